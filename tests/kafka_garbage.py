"""Garbage a Kafka topic can hold, for the worker's and the sink's dead-letter tests.

Every value here must become a dead letter carrying its reason, and the
consumer must go on: nothing in a topic may stop or crash it.
"""

from __future__ import annotations

import random

GARBAGE: list[bytes | None] = [
    None,  # a tombstone
    b"",
    b"not json",
    b"\xff\xfe\x00{\x00",
    b'{"reports": [' * 2000,  # truncated, and deep
    b"[" * 100_000 + b"]" * 100_000,  # deeper than the decoder's stack
    b'{"reports": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}",
    b'{"reports": [{"report_id": "x", "ts": NaN}]}',
    b'{"reports": [{"report_id": "x", "ts": 1e400}]}',
    b'{"reports": 7}',
    b'{"samples": "x", "reports": null}',
    '{"reports": [{"report_id": "caf\u00e9"}]}'.encode("latin-1"),
    '{"reports": [{"report_id": "x"}]}'.encode("utf-16"),
    b"\xef\xbb\xbf" + b'{"reports": [{"report_id": "x"}]}',
    b'{"reports": [], "reports": [1]}',
    b"\x00" * 1000,
    random.Random(7).randbytes(200_000),
]
