"""The demo's child processes; they live in ``outagewatch.pipeline.processes`` (shared with the benchmarks)."""

from outagewatch.pipeline.processes import Child

__all__ = ["Child"]
