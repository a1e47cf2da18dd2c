"""Running the collector as a subprocess (the demo and the benchmarks do).

>>> collector_argv(18080)[-5:]
['collect', '--otlp-port', '0', '--port', '18080']
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from outagewatch.stack.process import tail_of


def collector_argv(port: int, extra: Sequence[str] = ()) -> list[str]:
    # The OTLP listener on a free port: several collectors (and test runs) share this machine, and 4318 once.
    return [sys.executable, "-m", "outagewatch", "collect", "--otlp-port", "0", *extra, "--port", str(port)]


class CollectorProcess:
    """``outagewatch collect`` in a child process, configured by ``OUTAGEWATCH_*`` variables in ``env``.

    ``with CollectorProcess(port, env={"OUTAGEWATCH_TOPICS_CLIENT_REPORTS": "t"}) as collector: ...``
    starts it, waits until ``/healthz`` answers, and stops it (SIGTERM) at the end.
    """

    name = "collector"

    def __init__(self, port: int, env: Mapping[str, str] | None = None, extra_args: Sequence[str] = (),
                 log_path: str | None = None) -> None:
        self.port = port
        self.env = dict(os.environ, **(env or {}))
        self.extra_args = tuple(extra_args)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/healthz"

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        return tail_of(Path(self.log_path), lines) if self.log_path else "(no log file)"

    def start(self, timeout_s: float = 60.0) -> CollectorProcess:
        log = open(self.log_path or os.devnull, "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(collector_argv(self.port, self.extra_args), env=self.env,  # noqa: S603
                                        stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the collector exited with {self.process.returncode} during start-up"
                                   + (f"; see {self.log_path}" if self.log_path else ""))
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as answer:  # noqa: S310
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the collector did not answer /healthz on port {self.port} within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 15.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
