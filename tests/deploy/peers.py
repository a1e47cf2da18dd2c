"""The real Prometheus and Alertmanager (Debian's packages, installed on first use) as test processes."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from outagewatch.stack.packages import ensure_peer
from outagewatch.stack.process import free_port


def get_json(url: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local test peers
        return json.loads(response.read())


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, seen: Callable[[], Any] | None = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}" + (f"; last seen {seen()!r}" if seen else ""))


@contextmanager
def peer(binary: str, args: list[str], home: Path, ready_url: str, name: str) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=home)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{name} exited: {log_path.read_text(errors='replace')[-2000:]}")
        with urllib.request.urlopen(ready_url, timeout=1) as response:  # noqa: S310 - local test peer
            return bool(response.status == 200)

    try:
        wait_for(ready, 60, f"{name} {ready_url}")
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def alertmanager(home: Path, config: str) -> Iterator[str]:
    """Alertmanager on a free port with ``config``; yields its base URL."""
    port = free_port()
    (home / "alertmanager.yml").parent.mkdir(parents=True, exist_ok=True)
    (home / "alertmanager.yml").write_text(config)
    base = f"http://127.0.0.1:{port}"
    with peer(ensure_peer("prometheus-alertmanager"),
              [f"--config.file={home / 'alertmanager.yml'}", f"--storage.path={home / 'am-data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
              home, f"{base}/-/ready", "alertmanager"):
        yield base


@contextmanager
def prometheus(home: Path, config: str) -> Iterator[str]:
    """Prometheus on a free port with ``config`` (rule files relative to ``home``); yields its base URL."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    (home / "prometheus.yml").write_text(config)
    base = f"http://127.0.0.1:{port}"
    with peer(ensure_peer("prometheus"),
              [f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'tsdb'}",
               f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
              home, f"{base}/-/ready", "prometheus"):
        yield base


def query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    return list(answer["data"]["result"])


def firing_alerts(base: str) -> list[dict[str, Any]]:
    """Prometheus's alerts in state firing."""
    return [a for a in get_json(f"{base}/api/v1/alerts")["data"]["alerts"] if a["state"] == "firing"]
