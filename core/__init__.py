"""The ground every package stands on: settings, event schemas, time, logging, GC tuning, Kafka admin."""
