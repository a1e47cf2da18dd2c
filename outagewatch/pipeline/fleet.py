"""Many pipeline processes of one run as children: collectors, workers and sinks that can be killed,
restarted, added and removed (the cluster test and `outagewatch bench cluster`).

``Fleet(settings, run_dir, env, collectors=2, workers=3, sinks=2).start()``
starts them all on free ports and waits until the collectors answer and the
workers serve their web page; ``kill("worker-2")`` is a SIGKILL,
``add_worker()`` a new member of the workers' group, ``stop()`` stops
collectors first and sinks last, so what the workers flushed is stored.
"""

from __future__ import annotations

import logging
import os
import signal
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from core.config import Settings
from outagewatch.pipeline.processes import Child
from outagewatch.pipeline.roles import Role, collector_role, sink_role, worker_role
from outagewatch.stack.process import StackError, free_port, port_open, wait_until

log = logging.getLogger("outagewatch.pipeline")


def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """A consumer group's state (``Stable``, ``PreparingRebalance``, ``Empty``...) and its member count."""
    from kafka.admin import KafkaAdminClient

    # Faust's members carry metadata kafka-python cannot decode; it warns once per member per call.
    logging.getLogger("kafka.admin._groups").setLevel(logging.ERROR)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group])[group]
        return str(described["group_state"]), len(described["members"])
    finally:
        admin.close()


def group_stable(bootstrap: str, group: str, members: int) -> bool:
    """The group has settled with exactly ``members`` members (every worker holds its partitions)."""
    return group_members(bootstrap, group) == ("Stable", members)


def wait_group_settled(bootstrap: str, group: str, members: int, settle_s: float = 10.0,
                       timeout_s: float = 180.0) -> None:
    """Wait until the group has been stable with ``members`` members for ``settle_s`` without a break.

    A Faust worker can rejoin once more a few seconds after its group first looks stable (its own
    topics appear, its agents subscribe); input sent before that moves partitions mid-stream.
    """
    import time

    deadline = time.monotonic() + timeout_s
    since: float | None = None
    last = ("", 0)
    while time.monotonic() < deadline:
        try:
            last = group_members(bootstrap, group)
        except Exception:  # noqa: BLE001 - the coordinator may not know the group yet
            last = ("unknown", 0)
        if last == ("Stable", members):
            since = since or time.monotonic()
            if time.monotonic() - since >= settle_s:
                return
        else:
            since = None
        time.sleep(0.5)
    raise StackError(f"group {group} did not settle with {members} members in {timeout_s:.0f}s; last: {last}")


class Fleet:
    """The children of one run; ``worker_args`` go to every worker (``--idle-seconds 2``)."""

    def __init__(self, settings: Settings, run_dir: Path, env: Mapping[str, str], *, collectors: int = 1,
                 workers: int = 1, sinks: int = 1, worker_args: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.env = dict(env)
        self.worker_args = worker_args
        self.roles: dict[str, Role] = {}
        self.children: dict[str, Child] = {}
        self._counts = {"collector": 0, "worker": 0, "sink": 0}
        self._ended: set[str] = set()
        self._planned = {"collector": collectors, "worker": workers, "sink": sinks}

    def start(self, timeout_s: float = 120.0) -> Fleet:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for kind in ("collector", "worker", "sink"):
            for _ in range(self._planned[kind]):
                self.add(kind, wait=False)
        for name in list(self.children):
            self.wait_serving(name, timeout_s)
        log.info("fleet up: %s; logs in %s", ", ".join(f"{n} (pid {c.pid})" for n, c in self.children.items()),
                 self.run_dir)
        return self

    def add(self, kind: str, wait: bool = True, timeout_s: float = 120.0) -> str:
        """Start one more collector, worker or sink; returns its name."""
        self._counts[kind] += 1
        index = self._counts[kind]
        role = (collector_role(index, free_port()) if kind == "collector"
                else worker_role(index, free_port()) if kind == "worker" else sink_role(index, free_port()))
        args = [*role.args, *(self.worker_args if kind == "worker" else ())]
        env = dict(self.env)
        if kind == "worker":
            # Each worker its own state folder, as each pod has its own.
            env["OUTAGEWATCH_STACK_DATA_DIR"] = str(self.run_dir / role.name)
        self.roles[role.name] = role
        self.children[role.name] = Child(role.name, args, env, self.run_dir / f"{role.name}.log").start()
        if wait:
            self.wait_serving(role.name, timeout_s)
        return role.name

    def wait_serving(self, name: str, timeout_s: float = 120.0) -> None:
        role, child = self.roles[name], self.children[name]

        def serving() -> bool:
            if not child.alive():
                raise StackError(f"{name} exited during start-up; its log ends:\n{child.log_tail()}")
            if role.kind == "collector":
                with urllib.request.urlopen(f"http://127.0.0.1:{role.port}/healthz", timeout=1) as answer:  # noqa: S310
                    return bool(answer.status == 200)
            return not role.port or port_open("127.0.0.1", role.port)

        wait_until(serving, timeout_s, name)

    def names(self, kind: str) -> list[str]:
        """The live children of one kind, oldest first."""
        return [name for name, role in self.roles.items() if role.kind == kind and self.children[name].alive()]

    def collector_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.roles[name].port}" for name in self.names("collector")]

    def kill(self, name: str) -> None:
        """SIGKILL: no flush, no goodbye to the group, as a crashed pod."""
        child = self.children[name]
        self._ended.add(name)
        if child.alive():
            os.killpg(child.pid, signal.SIGKILL)
            assert child.process is not None
            child.process.wait()
        log.info("killed %s (pid %d)", name, child.pid)

    def stop_one(self, name: str) -> int | None:
        """SIGTERM and wait: a member leaving the group on purpose (scale-in, rolling update)."""
        self._ended.add(name)
        return self.children[name].stop()

    def restart_crashed(self) -> list[tuple[str, str]]:
        """Start again every child that exited on its own (as Kubernetes restarts a crashed pod);
        returns each one's name and the last line of its log."""
        restarted = []
        for name, child in list(self.children.items()):
            if name in self._ended or child.alive():
                continue
            # The last line with words: Faust's worker ends its log with terminal escape codes.
            last_line = next((line for line in reversed(child.log_tail(40).splitlines())
                              if any(ch.isalpha() for ch in line.replace("\x1b[?25h", ""))), "")
            log.warning("%s exited on its own (%s); starting it again", name, last_line[:200])
            self.children[name] = Child(name, child.args, child.env, child.log_path).start()
            restarted.append((name, last_line))
        return restarted

    def check(self) -> None:
        """Raise if a child that should run has exited."""
        for name, child in self.children.items():
            if name not in self._ended and not child.alive():
                raise StackError(f"{name} exited unexpectedly; its log ends:\n{child.log_tail()}")

    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.children.items() if child.alive()}

    def stop(self) -> None:
        for kind in ("collector", "worker", "sink"):
            for name in self.names(kind):
                self.children[name].stop()
