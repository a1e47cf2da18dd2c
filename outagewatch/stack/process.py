"""Background processes we start, tracked by pid files so `down` stops only ours."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A component could not be installed, started or reached; the message says what to do."""


class NotReady(Exception):  # noqa: N818 - a state, not a failure: the probe will be retried
    """A readiness probe's reason for "not yet", shown if the wait times out."""


class ManagedProcess:
    """One long-running child, detached from our session, logging to a file.

    ``log_file`` takes the child's stdout and stderr; ``service_log`` is where
    the service writes its own log when that is elsewhere (Kafka's log4j
    file), which is the one worth reading when start-up stalls.
    """

    def __init__(self, name: str, run_dir: Path, log_file: Path, service_log: Path | None = None) -> None:
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_file
        self.service_log = service_log or log_file

    def pid(self) -> int | None:
        """The pid from our pid file if that process is still alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        if _is_zombie(pid):
            return None
        return pid

    def start(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            child = subprocess.Popen(  # noqa: S603 - argv is built by us
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                # Own session: a Ctrl-C in the terminal that ran `stack up`
                # must not take the broker down with it.
                start_new_session=True,
            )
        self.pid_file.write_text(str(child.pid))
        log.info("started %s (pid %d), log %s", self.name, child.pid, self.log_file)
        return child.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait, then SIGKILL. Returns whether a process was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            log.warning("%s (pid %d) ignored SIGTERM for %.0fs; sending SIGKILL", self.name, pid, timeout)
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the child's output and, if separate, of its service log."""
        tails = [tail_of(self.log_file, lines)]
        if self.service_log != self.log_file:
            tails.append(f"{self.service_log}:\n{tail_of(self.service_log, lines)}")
        return "\n".join(tails)


def tail_of(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file, or why there are none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except FileNotFoundError:
        return "(no log yet)"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Our own children linger as zombies until reaped; reap if we can.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Exited, waiting only to be reaped.

    A process whose main thread exited before its other threads shows ``Z``
    while they still run (a JVM running its shutdown hooks, still holding its
    listening socket): that one is not gone yet.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nothing listens on right now (for private test instances)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    interval: float = 0.25,
    progress_every: float = 15.0,
) -> None:
    """Poll ``check`` until true; on timeout raise a StackError naming the log.

    A check says why it is not ready by raising (``NotReady`` or any error);
    the latest reason is logged every ``progress_every`` seconds and ends up
    in the timeout's message, with the tail of the process's log.
    """
    started = time.monotonic()
    deadline = started + timeout
    next_progress = started + progress_every
    reason = "not checked yet"
    while time.monotonic() < deadline:
        if process is not None and process.pid() is None:
            raise StackError(
                f"{what}: the process exited during start-up. Look at {process.service_log}:\n"
                f"{process.log_tail()}"
            )
        try:
            if check():
                return
            reason = "the probe answered no"
        except Exception as exc:  # noqa: BLE001 - readiness probes fail in many ways
            reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, NotReady) else str(exc)
        now = time.monotonic()
        if now >= next_progress:
            log.info("still waiting for %s after %.0fs: %s", what, now - started, reason)
            next_progress = now + progress_every
        time.sleep(interval)
    if process is None:
        raise StackError(f"{what} not ready after {timeout:.0f}s; last: {reason}.")
    raise StackError(
        f"{what} not ready after {timeout:.0f}s; last: {reason}. "
        f"Its log ({process.service_log}) ends:\n{process.log_tail(30)}"
    )


def is_loopback(host: str) -> bool:
    return host in {"127.0.0.1", "localhost", "::1", "[::1]"} or host.startswith("127.")
