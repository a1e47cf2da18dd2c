"""Whole-pipeline benchmarks: ``e2e`` (sustained rate, zero loss), ``latency`` (onset to alert), ``storm`` (surges)."""
