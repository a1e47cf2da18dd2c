"""Debian's headless Chromium for the status page tests (no driver: --dump-dom and --screenshot), and a small
PNG reader for the pixel checks."""

from __future__ import annotations

import functools
import logging
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from outagewatch.stack.packages import ensure_peer

log = logging.getLogger(__name__)

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")


def chromium(url: str, width: int, height: int, *action: str, timeout: float = 60.0) -> str:
    """Run one headless Chromium with a fresh profile on ``url``; returns its stdout."""
    binary = warmed_chromium()
    return _run(binary, url, width, height, action, timeout)


@functools.cache
def warmed_chromium() -> str:
    """The Chromium binary, launched once on a blank page first.

    Chromium's first launch on a fresh machine reads its ~300 MB from a cold disk and builds the user's font
    cache; a fresh CI machine took over 30 s for it. That cost belongs to no test's page, so it is paid here,
    once, with its own generous limit, and later launches are timed on their own."""
    binary = ensure_peer("chromium")
    started = time.monotonic()
    _run(binary, "about:blank", 800, 600, ("--dump-dom",), timeout=120.0)
    log.info("chromium's first launch took %.1f s", time.monotonic() - started)
    return binary


def _run(binary: str, url: str, width: int, height: int, action: tuple[str, ...], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        result = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                 *action, url], capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise AssertionError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def dump_dom(url: str, width: int = 1280) -> str:
    return chromium(url, width, 900, "--dump-dom")


def screenshot(url: str, path: Path, width: int, height: int = 1200, decode_rows: int = 400) -> Image:
    chromium(url, width, height, f"--screenshot={path}")
    return read_png(path.read_bytes(), decode_rows)


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: list[bytes]  # RGB(A) bytes per row, filters undone
    channels: int

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row = self.rows[y]
        i = x * self.channels
        return row[i], row[i + 1], row[i + 2]

    def rows_of(self, colour: tuple[int, int, int], min_share: float) -> list[int]:
        """Rows where at least ``min_share`` of the pixels are ``colour`` (within 3 per channel)."""
        found = []
        for y in range(self.height):
            hits = sum(1 for x in range(0, self.width, 2)
                       if all(abs(a - b) <= 3 for a, b in zip(self.pixel(x, y), colour, strict=True)))
            if hits >= min_share * ((self.width + 1) // 2):
                found.append(y)
        return found


def read_png(data: bytes, max_rows: int = 1 << 30) -> Image:
    """The first ``max_rows`` rows of an 8-bit RGB or RGBA PNG, not interlaced: what Chromium writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    height = min(height, max_rows)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, rows, channels)


def hex_colour(text: str) -> tuple[int, int, int]:
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
