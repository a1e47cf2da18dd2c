"""Request bodies: content type, gzip (capped), JSON envelope or NDJSON, per-item decoding.

Pure functions; the HTTP layer maps ``BodyError.status`` to the answer. No
body is a server error: nesting deeper than the decoder's stack, a text
that is not UTF-8 and every other oddity is a 4xx with a reason, or a 202
whose ``errors`` say what was wrong with each item. A UTF-8 byte order mark
is ignored (RFC 8259 allows it); UTF-16 and UTF-32 are refused by name.

>>> valid, invalid = parse_reports(b'{"reports": [{"report_id": "a"}]}', "application/json", None, 1 << 20, 10)
>>> valid, invalid
([], [(0, 'Object missing required field `ts`')])
>>> parse_reports(b'{"reports": [', "application/json", None, 1 << 20, 10)
Traceback (most recent call last):
...
collectors.bodies.BodyError: 400: body is not valid JSON: Input data was truncated
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
from google.protobuf.message import DecodeError

from core import codec, schemas

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson"})


class BodyError(Exception):
    """A request body we refuse: ``status`` is the HTTP answer, ``reason`` says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def parse_protobuf(message: Any, body: bytes, what: str) -> Any:
    """``message`` (an empty protobuf message) filled from ``body``; 400 with the decoder's reason when it is not one."""
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise BodyError(400, f"body is not {what} in protobuf: {exc}") from None
    return message


class _RawSamples(msgspec.Struct):
    samples: list[msgspec.Raw]


_envelopes: dict[str, msgspec.json.Decoder[Any]] = {
    "reports": msgspec.json.Decoder(schemas.RawReportBatch),
    "samples": msgspec.json.Decoder(_RawSamples),
}
_sample_decoder = msgspec.json.Decoder(schemas.MetricSample)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``; 415 unless JSON or NDJSON in UTF-8.

    >>> media_type("application/JSON; charset=UTF-8")
    'application/json'
    >>> media_type("application/json; charset=latin-1")
    Traceback (most recent call last):
    ...
    collectors.bodies.BodyError: 415: charset 'latin-1' is not accepted: send UTF-8 (charset=utf-8, or none)
    """
    kind, _, parameters = (content_type or "").partition(";")
    kind = kind.strip().lower()
    if kind not in JSON_TYPES and kind not in NDJSON_TYPES:
        raise BodyError(415, "Content-Type must be application/json or application/x-ndjson, "
                             f"got {(content_type or 'none')[:100]!r}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise BodyError(415, f"charset {charset[:40]!r} is not accepted: send UTF-8 (charset=utf-8, or none)")
    return kind


_BOM_UTF8 = b"\xef\xbb\xbf"
_WIDE_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16",
              b"\xfe\xff": "UTF-16"}


def text_of(body: bytes) -> bytes:
    """The body without a UTF-8 byte order mark; 400 for UTF-16/32 (a BOM, or NUL bytes between characters).

    >>> text_of(b"\\xef\\xbb\\xbf{}")
    b'{}'
    >>> text_of('{"reports": []}'.encode("utf-16"))
    Traceback (most recent call last):
    ...
    collectors.bodies.BodyError: 400: body must be UTF-8 JSON; this looks like UTF-16: re-encode it as UTF-8
    """
    if body.startswith(_BOM_UTF8):
        return body[len(_BOM_UTF8):]
    for bom, name in _WIDE_BOMS.items():
        if body.startswith(bom):
            raise BodyError(400, f"body must be UTF-8 JSON; this looks like {name}: re-encode it as UTF-8")
    if b"\x00" in body[:64]:
        raise BodyError(400, "body must be UTF-8 JSON; it holds NUL bytes (UTF-16, or not text at all)")
    return body


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding: gzip``, refusing (413) to inflate past ``max_bytes``: no gzip bombs.

    >>> import gzip
    >>> decompress(gzip.compress(b"x" * 10), "gzip", 100)
    b'xxxxxxxxxx'
    >>> decompress(gzip.compress(b"x" * 1000), "gzip", 100)
    Traceback (most recent call last):
    ...
    collectors.bodies.BodyError: 413: body inflates past 100 bytes
    """
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise BodyError(415, f"Content-Encoding must be gzip or absent, got {content_encoding!r}")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(body, max_bytes + 1)
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise BodyError(413, f"body inflates past {max_bytes} bytes")
        if not inflater.eof:
            raise BodyError(400, "gzip body is truncated")
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid gzip: {exc}") from None
    return out


def split_items(body: bytes, kind: str, field: str, max_items: int) -> list[Any]:
    """The raw items of a batch: ``{"<field>": [...]}`` for JSON, one per non-blank line for NDJSON."""
    body = text_of(body)
    if not body.strip():
        raise BodyError(400, "body is empty")
    if kind in NDJSON_TYPES:
        items: list[Any] = [line for line in body.split(b"\n") if line.strip()]
    else:
        try:
            envelope = _envelopes[field].decode(body)
        except schemas.UNDECODABLE as exc:
            raise _envelope_error(field, schemas.clean_reason(exc),
                                  malformed=not isinstance(exc, msgspec.ValidationError)) from None
        items = getattr(envelope, field)
    if len(items) > max_items:
        raise BodyError(413, f"batch has {len(items)} items; at most {max_items} per request")
    return items


def _envelope_error(field: str, reason: str, *, malformed: bool) -> BodyError:
    if malformed:
        return BodyError(400, f"body is not valid JSON: {reason}")
    return BodyError(400, f"body must be {{\"{field}\": [...]}}: {reason}")


def decode_reports(body: bytes, kind: str, max_items: int) -> tuple[list[schemas.ClientReport], list[tuple[int, str]]]:
    """A decompressed ``POST /v1/reports`` body: the valid reports, and ``(index, reason)`` for the others.

    Decoded by ``core.codec``, as in the worker and the sink: the common body
    (JSON, every report valid, ``ts`` in epoch ms) is one msgspec call for the
    whole batch (``schemas.WireReport``); anything else goes item by item,
    which also says exactly what is wrong with each.

    >>> body = (b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c", "room_id": "r",'
    ...         b' "kind": "heartbeat", "platform": "ios"}, {"report_id": "b", "ts": 5}]}')
    >>> decode_reports(body, "application/json", 10)
    ([ClientReport(report_id='a', ts=1795323600000, client_id='c', room_id='r', kind='heartbeat', platform='ios', error_code=None, app_version=None, region=None, latency_ms=None, weight=1.0, source=None)], [(1, 'Object missing required field `client_id`')])
    >>> valid, _ = decode_reports(body[:body.index(b", {")] + b"]}", "application/json", 10)
    >>> type(valid[0]).__name__
    'WireReport'
    """
    if kind in NDJSON_TYPES:
        valid, rejected = codec.decode_items(split_items(body, kind, "reports", max_items))
    else:
        try:
            valid, rejected = _decode_batch(body, max_items)
        except codec.BatchTooLarge as exc:
            raise BodyError(413, str(exc)) from None
    return valid, [(item.index, item.reason) for item in rejected]


def _decode_batch(body: bytes, max_items: int) -> tuple[list[schemas.ClientReport], list[codec.Rejected]]:
    """A JSON body's reports; the encoding and the envelope checked only when it is not a batch as sent."""
    try:
        return codec.decode_batch(body, max_items)
    except codec.UnusableBatch as exc:
        text = text_of(body)
        if text is not body:  # a UTF-8 byte order mark, now gone
            return _decode_batch(text, max_items)
        if not text.strip():
            raise BodyError(400, "body is empty") from None
        raise _envelope_error("reports", str(exc), malformed=exc.malformed) from None


def decode_samples(body: bytes, kind: str, max_items: int) -> tuple[list[schemas.MetricSample], list[tuple[int, str]]]:
    """A decompressed ``POST /v1/metrics`` body: the valid samples, and ``(index, reason)`` for the others."""
    valid, rejected = codec.decode_each(split_items(body, kind, "samples", max_items), _sample_decoder.decode)
    return valid, [(item.index, item.reason) for item in rejected]


def parse_reports(body: bytes, content_type: str | None, content_encoding: str | None,
                  max_bytes: int, max_items: int) -> tuple[list[schemas.ClientReport], list[tuple[int, str]]]:
    return decode_reports(decompress(body, content_encoding, max_bytes), media_type(content_type), max_items)


def parse_samples(body: bytes, content_type: str | None, content_encoding: str | None,
                  max_bytes: int, max_items: int) -> tuple[list[schemas.MetricSample], list[tuple[int, str]]]:
    return decode_samples(decompress(body, content_encoding, max_bytes), media_type(content_type), max_items)


def decode_sample(item: Any) -> schemas.MetricSample:
    return _sample_decoder.decode(item)
