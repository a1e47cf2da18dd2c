"""``outagewatch collect --processes N``: N collector processes on one port, under one supervisor.

One Python process decodes about one core of reports. Each child here is a
whole collector listening with SO_REUSEPORT on the same port, and the kernel
spreads new connections over their sockets, so clients still see one
address. What a collector keeps per process is shared out, so that N of them
behave as one:

- the rate limits (``collector.rate_per_second``, per key, and
  ``source_rate_per_second``, per source) are the whole collector's: each
  child enforces 1/N of the rate (connections are spread evenly, so a key
  or source sending over many connections gets about its whole rate; one
  keep-alive connection gets 1/N). The bursts stay whole;
- the source hash is keyed by one secret (``collector.source_secret``, or
  one drawn for the run), so a client is one source and one storm sample in
  every child;
- only the first child scrapes ``collector.scrape_targets``.

Dedup by ``report_id`` is per process: a retry that reconnects to another
child is written twice, which downstream stores absorb (they are idempotent
on ``report_id``). ``/metrics`` answers for every child, each sample
labelled by its ``process`` (``collectors.siblings``); ``/healthz`` and
``/readyz`` for the child that took the connection (the
``Outagewatch-Process`` header says which).

The supervisor restarts a child that dies (a crash, its liveness guard,
a SIGKILL) and forwards SIGHUP (re-read the keys file); SIGINT or SIGTERM
stops them all. A child that exits before it is ready stops the whole
collector: that is a configuration or Kafka problem, which restarting would
only repeat.

>>> from core.config import CollectorSettings
>>> settings = Settings(collector=CollectorSettings(rate_per_second=1000.0, scrape_targets=("http://a/m=svc",)))
>>> [(c.rate_per_second, c.scrape_targets, c.source_secret) for c in (s.collector for s in shares(settings, 2, "k"))]
[(500.0, ('http://a/m=svc',), 'k'), (500.0, (), 'k')]
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from collectors.siblings import ProcessGroup
from core.config import Settings

log = logging.getLogger("collectors.processes")

READY_TIMEOUT_S = 120.0  # a child connects to Kafka before it listens; a cold broker can take a minute
STOP_TIMEOUT_S = 30.0  # a stopping child flushes what Kafka has not acknowledged
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STEADY_S = 60.0  # a child that ran this long before it died restarts after the shortest back-off


def shares(settings: Settings, processes: int, secret: str) -> list[Settings]:
    """Each child's settings: 1/``processes`` of each rate, one source ``secret``, scraping in the first only."""
    c = settings.collector
    shared = dataclasses.replace(c, processes=1, source_secret=c.source_secret or secret,
                                 rate_per_second=c.rate_per_second / processes,
                                 source_rate_per_second=c.source_rate_per_second / processes,
                                 storm_min_kept_per_second=c.storm_min_kept_per_second / processes)
    return [dataclasses.replace(settings, collector=shared if index == 0 else dataclasses.replace(shared, scrape_targets=()))
            for index in range(processes)]


def reserve_port(host: str, port: int, setting: str) -> tuple[int, socket.socket]:
    """``port`` (0: a free one), held by a bound, not listening, SO_REUSEPORT socket until the run ends.

    The children bind it beside the holder; a port another program holds is
    refused here, once, naming ``setting``, instead of in every child.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}; set {setting} to a free port, "
                                 "0 for any") from None
    return int(holder.getsockname()[1]), holder


def _serve(settings: Settings, host: str, port: int, group: ProcessGroup, verbosity: int, ready: Any) -> None:
    """One child: a whole collector on the shared port (runs in a spawned process)."""
    from collectors.server import run
    from collectors.sink import SinkUnavailable
    from core import gctune
    from core.logs import setup_logging

    setup_logging(verbosity, process=f"collector-{group.index}")
    gctune.for_throughput()
    # SIGINT reaches the whole terminal's process group; the supervisor alone decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run(settings, host=host, port=port, group=group, on_ready=lambda url: ready.put(group.index))
    except (SinkUnavailable, OSError) as exc:  # the supervisor says what follows (stop, or restart)
        logging.getLogger("collectors").error("collector process %d not started: %s", group.index, exc)
        sys.exit(1)


class Supervisor:
    """Starts the children, waits until all listen, restarts the ones that die, stops them on a signal."""

    def __init__(self, children: list[Settings], host: str, port: int, directory: str, verbosity: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._context = multiprocessing.get_context("spawn")
        self._ready: Any = self._context.Queue()
        self._children = children
        self._host, self._port, self._verbosity = host, port, verbosity
        self._clock = clock
        self._running: dict[int, BaseProcess] = {}
        self._quick_deaths: dict[int, int] = dict.fromkeys(range(len(children)), 0)
        self._restarted: set[int] = set()  # restarted, not yet listening
        self._started_at: dict[int, float] = {}
        self._stopping = False

    def _spawn(self, index: int) -> None:
        child = self._context.Process(target=_serve, name=f"collector-{index}", daemon=False,
                                      args=(self._children[index], self._host, self._port,
                                            ProcessGroup(index, len(self._children), self._directory),
                                            self._verbosity, self._ready))
        child.start()
        self._running[index] = child
        self._started_at[index] = self._clock()

    def start(self) -> bool:
        """Start every child; False when one exits or hangs before it listens (then ``stop`` the others)."""
        for index in range(len(self._children)):
            self._spawn(index)
        waiting = set(self._running)
        deadline = self._clock() + READY_TIMEOUT_S
        while waiting and not self._stopping:
            for index in list(waiting):
                if not self._running[index].is_alive():
                    log.error("collector process %d exited with %s before it was ready (its log is above); "
                              "stopping the others", index, self._running[index].exitcode)
                    return False
            if self._clock() > deadline:
                log.error("collector processes %s did not listen within %.0f s; stopping", sorted(waiting),
                          READY_TIMEOUT_S)
                return False
            self._drain_ready(waiting, timeout=0.2)
        return not self._stopping

    def _drain_ready(self, waiting: set[int], timeout: float) -> None:
        try:
            index = self._ready.get(timeout=timeout)
        except queue.Empty:
            return
        waiting.discard(index)
        if index in self._restarted:
            self._restarted.discard(index)
            log.info("collector process %d is back (pid %s)", index, self._running[index].pid)

    def watch(self) -> None:
        """Until ``stop_soon``: restart a child that dies, after a back-off that grows while it keeps dying."""
        due: dict[int, float] = {}  # child -> when it restarts
        while not self._stopping:
            wait([child.sentinel for index, child in self._running.items() if index not in due], timeout=0.5)
            while not self._ready.empty():
                self._drain_ready(set(), timeout=0.01)
            now = self._clock()
            for index, child in self._running.items():
                if index in due or child.is_alive() or self._stopping:
                    continue
                # Deaths in a row, each soon after its start, back off longer; one after a steady run does not.
                quick = self._quick_deaths[index] + 1 if now - self._started_at[index] < STEADY_S else 0
                self._quick_deaths[index] = quick
                pause = RESTART_BACKOFF_S[min(quick, len(RESTART_BACKOFF_S) - 1)]
                log.error("collector process %d (pid %s) died with exit code %s; restarting it in %.0f s; the "
                          "others keep serving the port", index, child.pid, child.exitcode, pause)
                due[index] = now + pause
            for index, at in list(due.items()):
                if at <= now and not self._stopping:
                    del due[index]
                    self._restarted.add(index)
                    self._spawn(index)

    def stop_soon(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self._stopping = True

    def forward(self, signum: int, frame: FrameType | None = None) -> None:
        for child in self._running.values():
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signum)

    def stop(self) -> int:
        """SIGTERM every child, wait for their flush, SIGKILL the ones that hang; the worst exit code."""
        self._stopping = True
        for child in self._running.values():
            if child.is_alive():
                child.terminate()
        worst = 0
        deadline = self._clock() + STOP_TIMEOUT_S
        for index, child in self._running.items():
            child.join(max(0.0, deadline - self._clock()))
            if child.is_alive():
                log.error("collector process %d did not stop within %.0f s; killing it", index, STOP_TIMEOUT_S)
                child.kill()
                child.join()
            worst = max(worst, child.exitcode or 0)
        return worst


def run(settings: Settings, *, host: str | None = None, port: int | None = None, verbosity: int = 0) -> int:
    """Run ``collector.processes`` collectors on one port until SIGINT or SIGTERM (blocking); the exit code."""
    from collectors.server import preflight
    from core.timeutil import SystemClock

    c = settings.collector
    bind_host = host if host is not None else c.host
    preflight(settings, bind_host, SystemClock())  # a bad key or setting is refused once, here, not N times
    bound, holder = reserve_port(bind_host, c.port if port is None else port,
                                 "OUTAGEWATCH_COLLECTOR_PORT (collect --port)")
    otlp, otlp_holder = ((c.otlp_port, None) if c.otlp_port < 0 else
                         reserve_port(bind_host, c.otlp_port, "OUTAGEWATCH_COLLECTOR_OTLP_PORT (collect --otlp-port)"))
    settings = dataclasses.replace(settings, collector=dataclasses.replace(c, port=bound, otlp_port=otlp))
    children = shares(settings, c.processes, secrets.token_hex(16))
    # The children's own /metrics sockets: a private directory, removed with the run.
    directory = tempfile.TemporaryDirectory(prefix="outagewatch-collect-")
    supervisor = Supervisor(children, bind_host, bound, directory.name, verbosity)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, supervisor.stop_soon)
    signal.signal(signal.SIGHUP, supervisor.forward)
    try:
        if not supervisor.start():
            supervisor.stop()
            return 1
        url = f"http://{bind_host}:{bound}"
        log.info("%d collector processes share %s (OTLP/HTTP %s); each takes 1/%d of the rate limits",
                 c.processes, url, f"port {otlp}" if otlp >= 0 else "off", c.processes)
        print(f"collector ready at {url}", flush=True)
        supervisor.watch()
        log.info("collector stopping (%d processes)", c.processes)
        return supervisor.stop()
    finally:
        for held in (holder, otlp_holder):
            if held is not None:
                held.close()
        directory.cleanup()
