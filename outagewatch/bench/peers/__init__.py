"""Peer implementations of the per-room 10 s window aggregation, for `bench peer`.

Each module is a program: ``python -m outagewatch.bench.peers.NAME --bootstrap
B --topic T --expect N`` consumes the prepared topic from the start, aggregates
per room in 10 s event-time tumbling windows (counts of reports,
errors and heartbeats), and prints one JSON line ``{"reports": N, "seconds": S, ...}``
where S runs from the first message processed to the N-th report.
"""
