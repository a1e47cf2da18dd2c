"""Finding (and, as root, installing) the Debian packages the stack runs."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from outagewatch.stack.process import StackError

log = logging.getLogger(__name__)

# Debian's postinst scripts would start these as system services on their
# default ports; we run them ourselves, so tell invoke-rc.d to start nothing.
_POLICY_RC = Path("/usr/sbin/policy-rc.d")


# The real peers the tests (and `bench`) run beside our processes, by the
# binary each test starts and the Debian packages that carry it. The tests ask
# for them through ``ensure_binary``, so the README's test command installs
# what it needs on a fresh machine, as `stack up` installs ClickHouse.
PEERS: dict[str, tuple[str, ...]] = {
    "prometheus-alertmanager": ("prometheus-alertmanager",),
    "prometheus-node-exporter": ("prometheus-node-exporter",),
    "prometheus": ("prometheus",),
    "promtool": ("prometheus",),
    "amtool": ("prometheus-alertmanager",),
    "kafkacat": ("kafkacat",),
    "chromium": ("chromium",),
}


def ensure_peer(name: str) -> str:
    """The path of one of ``PEERS``, installed first when missing (as root)."""
    return ensure_binary(name, PEERS[name])


def find_binary(name: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/bin", "/sbin")) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_binary(name: str, packages: tuple[str, ...]) -> str:
    """The path of ``name``; install its Debian packages first when missing and we are root."""
    found = find_binary(name)
    if found:
        return found
    if os.geteuid() != 0:
        raise StackError(
            f"{name} is not installed. Install it with: sudo apt-get install -y {' '.join(packages)}"
        )
    apt_install(packages)
    found = find_binary(name)
    if not found:
        raise StackError(f"installed {' '.join(packages)} but {name} is still not on PATH")
    return found


def apt_install(packages: tuple[str, ...]) -> None:
    log.warning("installing Debian packages %s (first use only)", " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    created_policy = False
    if not _POLICY_RC.exists():
        _POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        _POLICY_RC.chmod(0o755)
        created_policy = True
    try:
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
        result = subprocess.run(install, env=env, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
            result = subprocess.run(install, env=env, capture_output=True, text=True)  # noqa: S603
        if result.returncode != 0:
            raise StackError(
                f"apt-get install {' '.join(packages)} failed:\n{result.stderr[-2000:]}"
            )
    finally:
        if created_policy:
            _POLICY_RC.unlink(missing_ok=True)


# Go programs the tests build from the Go module proxy, pinned, into the cache folder (never the repository).
GO_TOOLS: dict[str, str] = {
    "helm": "helm.sh/helm/v3/cmd/helm@v3.22.0",
}


def ensure_go_tool(name: str, cache_dir: Path, timeout_s: float = 1800.0) -> str:
    """The path of one of ``GO_TOOLS``, built with ``go install`` into ``cache_dir``/bin on first use."""
    target = cache_dir / "bin" / name
    if target.is_file() and os.access(target, os.X_OK):
        return str(target)
    go = find_binary("go", ("/usr/local/go/bin", "/usr/lib/go/bin", "/usr/bin"))
    if go is None:
        raise StackError(f"{name} is built with Go, which is not installed: apt-get install -y golang-go, or put a "
                         f"{name} binary at {target}")
    log.warning("building %s with go install %s into %s (first use only, several minutes)", name, GO_TOOLS[name],
                target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(target.parent), GOPATH=str(cache_dir / "go"), GOFLAGS="-mod=mod")
    result = subprocess.run([go, "install", GO_TOOLS[name]], env=env, capture_output=True, text=True,  # noqa: S603
                            timeout=timeout_s, cwd=cache_dir)
    if result.returncode != 0 or not target.is_file():
        raise StackError(f"go install {GO_TOOLS[name]} failed:\n{result.stderr[-2000:]}")
    return str(target)
