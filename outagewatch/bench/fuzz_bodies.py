"""Request bodies for fuzzing ``POST /v1/reports``: valid batches, mutated with and without their structure.

``Bodies(seed).next()`` gives one ``FuzzBody`` (bytes, headers, the family it
came from), the same sequence for the same seed. Families, in rough
proportions:

- ``valid``: a batch of one to eight good reports, JSON or NDJSON;
- ``field``: one report's field set to an odd value (NaN, Infinity, 1e400,
  huge integers, numbers as strings, nulls, arrays, objects, invalid UTF-8,
  dates in 2099 and 2001, very long strings), a field dropped, unknown or
  duplicated keys, a client-sent ``source`` and ``weight``;
- ``envelope``: the envelope broken (an array or a scalar at the top, a
  missing or null ``reports``, nested arrays, NDJSON oddities: empty lines,
  CRLF, a BOM, an envelope where lines are expected);
- ``bytes``: raw mutations of a valid body (flips, inserts, deletes,
  truncations, repeated slices);
- ``nested``: deep nesting of arrays and objects, at the top or inside a report;
- ``encoding``: gzip (good, truncated, corrupt, bombs, gzip bytes without
  the header), UTF-16/32, latin-1, BOMs, wrong charsets;
- ``headers``: wrong, missing or odd Content-Type and Content-Encoding;
- ``huge``: bodies around the collector's body limit, batches past its item limit.

>>> def stream(seed):
...     bodies = Bodies(seed, max_body_bytes=4096, max_items=10, now_ms=1_795_323_600_000)
...     return [bodies.next() for _ in range(300)]
>>> sorted({body.family for body in stream(3)})
['bytes', 'encoding', 'envelope', 'field', 'headers', 'huge', 'nested', 'valid']
>>> stream(3) == stream(3) != stream(4)
True
"""

from __future__ import annotations

import gzip
import json
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from core.schemas import ERROR_CODES, KINDS, PLATFORMS

JSON = "application/json"
NDJSON = "application/x-ndjson"
FIELDS = ("report_id", "ts", "client_id", "room_id", "kind", "platform", "error_code", "app_version", "region",
          "latency_ms", "weight", "source")
# Odd values, as JSON text (so NaN, Infinity and invalid UTF-8 can be written at all).
ODD_VALUES: tuple[bytes, ...] = (
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400", b"9" * 400, b"-" + b"9" * 40,
    b"18446744073709551616", b"-9223372036854775809", b"0", b"-1", b"0.5", b"1e308", b"null", b"true", b"false",
    b"[]", b"{}", b"[1,2,3]", b'{"a":{"b":[null]}}', b'""', b'" "', b'"' + b"x" * 5000 + b'"', b'"\\u0000"',
    b'"\\ud800"', b'"\xff\xfe"', b'"\xc3\x28"', b'"caf\xe9"', b'"\xf0\x9f\x8e\xa7 room"', b'"1795323600000"',
    b'"2099-01-01T00:00:00Z"', b'"2001-01-01T00:00:00Z"', b'"2026-13-45T99:99:99Z"', b'"yesterday"',
    b'"2026-11-22T05:00:00"', b'"2026-11-22T05:00:00+25:00"', b"4102444800000", b"946684799999",
    b"1e13", b"1.7953236e12", b"-0", b'"error"', b'"crash"', b'"ios"', b'"\\n\\r\\t"', b"[" * 40 + b"]" * 40,
)


@dataclass(frozen=True)
class FuzzBody:
    family: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Bodies:
    """A seeded stream of fuzz bodies (see the module docstring)."""

    def __init__(self, seed: int, max_body_bytes: int = 1 << 20, max_items: int = 5000, fresh_share: float = 0.1,
                 now_ms: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.max_body_bytes = max_body_bytes
        self.max_items = max_items
        # Most report ids repeat (a pool), so the collector's dedup keeps Kafka from filling up.
        self.fresh_share = fresh_share
        self.now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        self.count = 0
        self._families: list[tuple[str, float, Callable[[], FuzzBody]]] = [
            ("valid", 0.12, self._valid), ("field", 0.30, self._field), ("envelope", 0.12, self._envelope),
            ("bytes", 0.20, self._bytes), ("nested", 0.05, self._nested), ("encoding", 0.12, self._encoding),
            ("headers", 0.07, self._headers), ("huge", 0.02, self._huge),
        ]
        self._weights = [weight for _, weight, _ in self._families]

    def next(self) -> FuzzBody:
        self.count += 1
        _, _, make = self.rng.choices(self._families, self._weights)[0]
        return make()

    # -- building blocks -------------------------------------------------------------------------

    def _report(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(KINDS)
        fresh = rng.random() < self.fresh_share
        report: dict[str, Any] = {
            "report_id": f"fz{self.seed}-{self.count}-{rng.randrange(10**9)}" if fresh else f"fz-pool-{rng.randrange(1000)}",
            "ts": self.now_ms - rng.randrange(60_000), "client_id": f"c{rng.randrange(10_000)}",
            "room_id": f"room-{rng.randrange(50)}", "kind": kind, "platform": rng.choice(PLATFORMS),
        }
        if kind == "error":
            report["error_code"] = rng.choice(ERROR_CODES)
        if rng.random() < 0.3:
            report.update(app_version="5.2.1", region=rng.choice(("eu-west", "us-east")))
        if rng.random() < 0.2:
            report["latency_ms"] = round(rng.random() * 500, 2)
        return report

    def _reports(self, low: int = 1, high: int = 8) -> list[dict[str, Any]]:
        return [self._report() for _ in range(self.rng.randint(low, high))]

    @staticmethod
    def _envelope_of(items: list[bytes]) -> bytes:
        return b'{"reports":[' + b",".join(items) + b"]}"

    def _encode_items(self, reports: list[dict[str, Any]]) -> list[bytes]:
        return [json.dumps(report, separators=(",", ":")).encode() for report in reports]

    def _as(self, items: list[bytes]) -> tuple[bytes, str]:
        if self.rng.random() < 0.25:
            separator = self.rng.choice([b"\n", b"\r\n", b"\n\n", b"\n \n"])
            return separator.join(items) + self.rng.choice([b"", b"\n", b"\r\n"]), NDJSON
        return self._envelope_of(items), JSON

    # -- families ----------------------------------------------------------------------------------

    def _valid(self) -> FuzzBody:
        body, kind = self._as(self._encode_items(self._reports()))
        if self.rng.random() < 0.3:
            return FuzzBody("valid", gzip.compress(body, compresslevel=1, mtime=0),
                            {"Content-Type": kind, "Content-Encoding": "gzip"})
        return FuzzBody("valid", body, {"Content-Type": kind})

    def _field(self) -> FuzzBody:
        rng = self.rng
        reports = self._reports()
        items = self._encode_items(reports)
        victim = rng.randrange(len(items))
        report = reports[victim]
        action = rng.random()
        name = rng.choice(FIELDS)
        if action < 0.55:  # an odd value, written as raw JSON text
            report.pop(name, None)
            text = json.dumps(report, separators=(",", ":")).encode()
            odd = rng.choice(ODD_VALUES)
            items[victim] = text[:-1] + (b"," if len(text) > 2 else b"") + b'"' + name.encode() + b'":' + odd + b"}"
        elif action < 0.7:
            report.pop(name, None)
            items[victim] = json.dumps(report).encode()
        elif action < 0.85:  # the same key twice, the second one odd
            items[victim] = items[victim][:-1] + b',"' + name.encode() + b'":' + rng.choice(ODD_VALUES) + b"}"
        else:
            report[rng.choice(["extra", "Kind", "", "reports", "\u00e9"])] = rng.choice([1, "x", None, [1], {}])
            items[victim] = json.dumps(report, ensure_ascii=rng.random() < 0.5).encode()
        body, kind = self._as(items)
        return FuzzBody("field", body, {"Content-Type": kind})

    def _envelope(self) -> FuzzBody:
        rng = self.rng
        items = self._encode_items(self._reports())
        joined = b",".join(items)
        choices = [
            (b"[" + joined + b"]", JSON), (joined, JSON), (b'{"reports":null}', JSON), (b'{"reports":{}}', JSON),
            (b'{"reports":[]}', JSON), (b'{"report":[' + joined + b"]}", JSON), (b'{"reports":[[' + joined + b"]]}", JSON),
            (b'{"reports":[' + joined + b'],"reports":[1]}', JSON), (b'{"reports":[' + joined + b",]}", JSON),
            (b'{"reports":[' + joined + b"]} trailing", JSON), (b"\xef\xbb\xbf" + self._envelope_of(items), JSON),
            (b"", JSON), (b"   \n  ", JSON), (b"null", JSON), (b"42", JSON), (b'"reports"', JSON),
            (self._envelope_of(items), NDJSON), (b"\n\n" + b"\r\n".join(items) + b"\r\n\r\n", NDJSON),
            (b"\n".join(items[:1] + [b"", b"[1]", b"null", b"{}"] + items[1:]), NDJSON),
            (b"\xef\xbb\xbf" + b"\n".join(items), NDJSON), (b"\r" * 10, NDJSON), (b"\n".join([b"{"] * 5), NDJSON),
        ]
        body, kind = rng.choice(choices)
        return FuzzBody("envelope", body, {"Content-Type": kind})

    def _bytes(self) -> FuzzBody:
        rng = self.rng
        body, kind = self._as(self._encode_items(self._reports()))
        data = bytearray(body)
        for _ in range(rng.randint(1, 6)):
            if not data:
                break
            at = rng.randrange(len(data))
            action = rng.random()
            if action < 0.3:
                data[at] = rng.randrange(256)
            elif action < 0.5:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif action < 0.7:
                del data[at:at + rng.randint(1, 16)]
            elif action < 0.85:
                data = data[:at]
            else:
                end = min(len(data), at + rng.randint(1, 64))
                data[at:at] = data[at:end] * rng.randint(2, 20)
        return FuzzBody("bytes", bytes(data), {"Content-Type": kind})

    def _nested(self) -> FuzzBody:
        rng = self.rng
        depth = rng.choice([50, 200, 1000, 5000, 100_000])
        opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        inner = opener * depth + b"1" + closer * depth
        where = rng.random()
        if where < 0.4:
            body = inner
        elif where < 0.8:
            body = b'{"reports":[' + inner + b"]}"
        else:
            report = self._encode_items([self._report()])[0]
            body = b'{"reports":[' + report[:-1] + b',"room_id":' + inner + b"}]}"
        kind = NDJSON if rng.random() < 0.2 else JSON
        return FuzzBody("nested", body, {"Content-Type": kind})

    def _encoding(self) -> FuzzBody:
        rng = self.rng
        body, kind = self._as(self._encode_items(self._reports()))
        headers = {"Content-Type": kind}
        action = rng.randrange(11)
        if action == 0:
            data, headers["Content-Encoding"] = gzip.compress(body, mtime=0), "gzip"
        elif action == 1:
            packed = gzip.compress(body, mtime=0)
            data, headers["Content-Encoding"] = packed[:rng.randrange(1, len(packed))], "gzip"
        elif action == 2:
            corrupt = bytearray(gzip.compress(body, mtime=0))
            corrupt[rng.randrange(10, len(corrupt))] ^= 0xFF
            data, headers["Content-Encoding"] = bytes(corrupt), rng.choice(["gzip", "x-gzip"])
        elif action == 3:  # a bomb: small on the wire, far past the body limit inflated
            data, headers["Content-Encoding"] = self._bomb(rng.choice([2, 20, 100])), "gzip"
        elif action == 4:
            data = gzip.compress(body, mtime=0)  # gzip bytes, no header
        elif action == 5:
            data, headers["Content-Encoding"] = body, "gzip"  # the header, no gzip
        elif action == 6:
            data = body.decode().encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
        elif action == 7:
            data = body.decode().replace("room", "r\u00e9\u00fcm").encode("latin-1")
        elif action == 8:
            data = rng.choice([b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff"]) + body
        elif action == 9:
            data = body
            headers["Content-Type"] = f"{kind}; charset={rng.choice(['latin-1', 'utf-16', 'UTF-8', 'ascii', 'x', ''])}"
        else:
            data = zlib.compress(body)
            headers["Content-Encoding"] = rng.choice(["deflate", "gzip", "br", "gzip, gzip"])
        return FuzzBody("encoding", data, headers)

    def _bomb(self, times: int) -> bytes:
        """Gzip of ``times`` the body limit in spaces: a few kilobytes on the wire."""
        return _bomb(self.max_body_bytes * times)

    def _headers(self) -> FuzzBody:
        rng = self.rng
        body, kind = self._as(self._encode_items(self._reports()))
        headers: dict[str, str] = {}
        content_type = rng.choice([None, "", "text/plain", "application/xml", "application/json;", "APPLICATION/JSON",
                                   "application/json; charset=utf-8; boundary=x", "application/x-ndjson ",
                                   "multipart/form-data", "application/json\t", "*/*", kind + "; q=0.5",
                                   "application/ndjson", "application/jsonx", "x" * 2000])
        if content_type is not None:
            headers["Content-Type"] = content_type
        encoding = rng.choice([None, "", "identity", "IDENTITY", "gzip", "compress", "x" * 300, "gzip;q=1"])
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        return FuzzBody("headers", body, headers)

    def _huge(self) -> FuzzBody:
        rng = self.rng
        if rng.random() < 0.5:
            size = self.max_body_bytes + rng.choice([-64, 0, 1, 4096])
            filler = b'{"reports":[' + b" " * max(0, size - 14) + b"]}"
            return FuzzBody("huge", filler[:size] if rng.random() < 0.3 else filler, {"Content-Type": JSON})
        count = self.max_items + rng.choice([0, 1, 100])
        item = self._encode_items([self._report()])[0]
        return FuzzBody("huge", self._envelope_of([item] * count), {"Content-Type": JSON})



@lru_cache(maxsize=8)
def _bomb(inflated_bytes: int) -> bytes:
    """Made once per size and process: compressing a hundred megabytes takes seconds."""
    return gzip.compress(b'{"reports":[' + b" " * inflated_bytes + b"]}", compresslevel=9, mtime=0)
