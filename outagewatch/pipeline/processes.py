"""Child processes: each an `outagewatch` subcommand with its own log file; their memory and CPU."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from outagewatch.stack.process import tail_of

log = logging.getLogger(__name__)


class Child:
    """``python -m outagewatch ARGS`` in its own process group, logging to ``log_path``."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_path: Path,
                 health_url: str | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        # Its /healthz, for the supervisor (outagewatch/pipeline/supervise.py).
        self.health_url = health_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "outagewatch", *self.args], env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Own process group: the terminal's Ctrl-C reaches the demo,
                # which then stops the children in order (sink last).
                start_new_session=True,
            )
        log.info("started %s (pid %d), log %s", self.name, self.process.pid, self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL its process group (a stopped process too), and reap it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", self.name, timeout_s)
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 15) -> str:
        return tail_of(self.log_path, lines)


def parse_status(text: str) -> dict[str, int]:
    """Memory fields of ``/proc/<pid>/status``, in KiB.

    >>> parse_status("Name:\\tpython\\nVmHWM:\\t  204800 kB\\nVmRSS:\\t  102400 kB\\n")
    {'VmHWM': 204800, 'VmRSS': 102400}
    """
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM") and value.split():
            fields[name] = int(value.split()[0])
    return fields


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (``collect --processes N``'s children), from ``/proc``."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def memory_mib(pid: int) -> dict[str, float]:
    """Current (``rss_mib``) and peak (``peak_rss_mib``, VmHWM) resident memory of a live process, summed
    over it and its children."""
    totals = {"VmRSS": 0, "VmHWM": 0}
    for member in (pid, *descendants(pid)):
        try:
            fields = parse_status(Path(f"/proc/{member}/status").read_text())
        except OSError:
            if member == pid:
                return {}
            continue
        for name in totals:
            totals[name] += fields.get(name, 0)
    return {"rss_mib": round(totals["VmRSS"] / 1024, 1), "peak_rss_mib": round(totals["VmHWM"] / 1024, 1)}


def parse_cpu_ticks(stat: str, reaped: bool = False) -> int:
    """utime + stime (clock ticks) from a ``/proc/<pid>/stat`` line (the name may hold spaces); ``reaped``
    adds what its children that ended used (cutime + cstime).

    >>> line = "42 (python -m x) S 1 42 42 0 -1 0 0 0 0 0 150 30 7 3 20 0 9 0 100"
    >>> parse_cpu_ticks(line), parse_cpu_ticks(line, reaped=True)
    (180, 190)
    """
    after_name = stat.rsplit(")", 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])
    return ticks + int(after_name[13]) + int(after_name[14]) if reaped else ticks


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds a live process has used (user + system), with its children's, live or ended."""
    try:
        ticks = parse_cpu_ticks(Path(f"/proc/{pid}/stat").read_text(), reaped=True)
    except OSError:
        return None
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            ticks += parse_cpu_ticks(Path(f"/proc/{child}/stat").read_text())
    return ticks / os.sysconf("SC_CLK_TCK")


def listening_inodes(table: str, port: int) -> set[int]:
    """Socket inodes listening on ``port`` in a ``/proc/net/tcp`` (or ``tcp6``) table.

    >>> header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    >>> listen = "   0: 0100007F:4A94 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91234 1"
    >>> talking = "   1: 0100007F:4A94 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 91299 1"
    >>> listening_inodes("\\n".join([header, listen, talking]), 19092)
    {91234}
    """
    found: set[int] = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
            found.add(int(fields[9]))
    return found


def listening_pid(port: int, proc: Path = Path("/proc")) -> int | None:
    """The process listening on a local TCP port (a broker or ClickHouse we did not start), if we may see it."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes((proc / "net" / table).read_text(), port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return int(entry.name)
    return None
