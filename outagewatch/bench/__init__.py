"""Benchmarks: `outagewatch bench NAME` prints one JSON object per figure."""
