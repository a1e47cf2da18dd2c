"""The keys a collector accepts now, and their rotation without a restart.

With ``collector.api_keys_file`` set, the keys come from that file (one
entry a line, as in ``collectors.auth``; blank lines and ``# comments``
skipped) and replace ``collector.api_keys``. The file is read again on
SIGHUP and whenever its modification time, size or inode changes (checked
every ``api_keys_reload_seconds`` of the injected clock). A rotation lists
the old and the new key together until every client has the new one, then
drops the old. A file that cannot be used (a bad line, no keys, a key the
collector must refuse) keeps the keys loaded before, and the log says why.

>>> import tempfile, pathlib
>>> from core.timeutil import ManualClock
>>> path = pathlib.Path(tempfile.mkdtemp()) / "keys"
>>> _ = path.write_text("# rotation: old and new\\napp-2026a:old-secret:reports\\napp-2026b:new-secret:reports\\n")
>>> clock = ManualClock(0)
>>> ring = KeyRing.from_file(path, reload_ms=5_000, clock=clock)
>>> [key.name for key in ring.keys.keys]
['app-2026a', 'app-2026b']
>>> _ = path.write_text("app-2026b:new-secret:reports\\nsrv:x\\n" + " " * 20)
>>> ring.poll(), clock.advance(5_000), ring.poll(), [key.name for key in ring.keys.keys]
(False, None, True, ['app-2026b', 'srv'])
>>> _ = path.write_text("broken line without a secret\\n")
>>> ring.reload("SIGHUP"), [key.name for key in ring.keys.keys]
(False, ['app-2026b', 'srv'])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from collectors.auth import ApiKeys, KeyConfigError, parse_entry
from core.timeutil import Clock

log = logging.getLogger("collectors.keys")

# A check a key set must pass before it is used (e.g. no demo key off loopback); raises KeyConfigError.
Check = Callable[[ApiKeys], None]


def read_keys_file(path: Path) -> ApiKeys:
    """Every entry of a keys file; ``KeyConfigError`` names the file and line of what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigError(f"keys file {path} cannot be read: {exc}") from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        keys.append(parse_entry(entry, where=f"keys file {path} line {number}:"))
    if not keys:
        raise KeyConfigError(f"keys file {path} holds no keys (a file being written? replace it atomically, "
                             "e.g. write a new file and rename it over the old one)")
    return ApiKeys.of(keys, f"keys file {path}")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class KeyRing:
    """``keys`` is what requests are checked against; it is replaced whole, never changed in place."""

    def __init__(self, keys: ApiKeys, path: Path | None = None, reload_ms: int = 5_000,
                 clock: Clock | None = None, check: Check | None = None) -> None:
        self.keys = keys
        self.path = path
        self.reload_ms = reload_ms
        self.clock = clock
        self.check = check
        # Told "loaded" or "refused" after every reload (the collector counts them in /metrics).
        self.on_reload: Callable[[str], None] = lambda outcome: None
        self._signature = _signature(path) if path is not None else None
        self._checked_ms = clock.now_ms() if clock is not None else 0

    @classmethod
    def from_settings(cls, entries: tuple[str, ...], path: str, reload_ms: int, clock: Clock,
                      check: Check | None = None) -> KeyRing:
        """From ``collector.api_keys``, or from ``collector.api_keys_file`` when it is set; raises on bad keys."""
        if path:
            return cls.from_file(Path(path).expanduser(), reload_ms, clock, check)
        keys = ApiKeys.parse(entries)
        if check is not None:
            check(keys)
        return cls(keys, check=check)

    @classmethod
    def from_file(cls, path: Path, reload_ms: int, clock: Clock, check: Check | None = None) -> KeyRing:
        keys = read_keys_file(path)
        if check is not None:
            check(keys)
        return cls(keys, path, reload_ms, clock, check)

    def poll(self) -> bool:
        """Re-read the file if it changed and ``reload_ms`` passed since the last look; True when keys changed."""
        if self.path is None or self.clock is None:
            return False
        now = self.clock.now_ms()
        if now - self._checked_ms < self.reload_ms:
            return False
        self._checked_ms = now
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        return self.reload("the file changed")

    def reload(self, why: str) -> bool:
        """Read the file again now; on any problem keep the current keys. True when the new ones are in use."""
        if self.path is None:
            log.info("keys: %s, but collector.api_keys_file is not set; nothing to reload", why)
            return False
        try:
            keys = read_keys_file(self.path)
            if self.check is not None:
                self.check(keys)
        except KeyConfigError as exc:
            self.on_reload("refused")
            log.error("keys not reloaded (%s): %s; still using the %d key(s) loaded before", why, exc,
                      len(self.keys.keys))
            return False
        before = {key.name for key in self.keys.keys}
        after = {key.name for key in keys.keys}
        self.keys = keys
        self.on_reload("loaded")
        log.info("keys reloaded from %s (%s): %d key(s); added %s; removed %s", self.path, why, len(after),
                 ", ".join(sorted(after - before)) or "none", ", ".join(sorted(before - after)) or "none")
        return True
