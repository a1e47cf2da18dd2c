"""The whole pipeline as child processes: collector, worker and ClickHouse sink.

Shared by ``outagewatch demo`` and the whole-pipeline benchmarks
(``outagewatch bench e2e|latency|storm``): ``isolation`` names a run's own
topics, consumer groups and database; ``running.Pipeline`` starts, checks,
counts and stops the processes; ``processes`` reads their memory and CPU.
"""
