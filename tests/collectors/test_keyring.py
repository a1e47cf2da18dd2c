"""Keys that fit who holds them, over real HTTP: scopes, the demo key off loopback, rotation without restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from collectors.auth import ApiKeys, KeyConfigError, digest_hex, parse_entry
from collectors.keyring import KeyRing
from core.config import Settings
from core.timeutil import ManualClock
from outagewatch.pipeline.collector import CollectorProcess
from outagewatch.stack.process import free_port
from tests.collectors.helpers import BASE_TS, collector_settings, running_collector, unique_prefix


def _report(prefix: str, index: int = 0) -> dict[str, object]:
    return {"report_id": f"{prefix}{index}", "ts": BASE_TS, "client_id": "c", "room_id": "r", "kind": "join",
            "platform": "web"}


def _sample() -> dict[str, object]:
    return {"ts": BASE_TS, "service": "room-api", "name": "cpu", "value": 0.5}


def _post(url: str, path: str, secret: str, body: dict[str, object]) -> requests.Response:
    return requests.post(url + path, json=body, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def test_entries_parse_scopes_digests_and_the_old_format() -> None:
    assert parse_entry("app:pub:reports").scopes == {"reports"}
    assert parse_entry("srv:sec:metrics+relay").scopes == {"metrics", "relay"}
    old = parse_entry("ops:s3cret")
    assert old.scopes == {"reports", "metrics"} and old.legacy
    assert parse_entry("odd:a:b:reports").digest == parse_entry("x:a:b").digest  # the secret is "a:b"
    stored = parse_entry(f"srv:sha256={digest_hex('s3cret')}:metrics")
    assert ApiKeys((stored,)).identify("Bearer s3cret") == stored
    for bad, says in (("app:pub:reports+admin", "unknown scope(s) admin"), ("srv:sha256=abc", "64 hex digits"),
                      ("nosecret", "non-empty secret")):
        with pytest.raises(KeyConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
            parse_entry(bad)
    with pytest.raises(KeyConfigError, match="appear more than once"):
        ApiKeys.parse(["a:1", "a:2"])


def test_the_file_is_reread_when_it_changes_and_a_bad_one_keeps_the_old_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("app:one:reports\n")
    clock = ManualClock(0)
    ring = KeyRing.from_file(path, reload_ms=2_000, clock=clock)
    path.write_text("app:one:reports\napp-2:two:reports\n")
    assert not ring.poll()  # not due yet
    clock.advance(2_000)
    assert ring.poll() and ring.keys.identify("Bearer two") is not None
    clock.advance(2_000)
    assert not ring.poll()  # unchanged
    path.write_text("")  # half-written: no keys at all
    clock.advance(2_000)
    assert not ring.poll() and ring.keys.identify("Bearer two") is not None
    path.unlink()
    assert not ring.reload("SIGHUP") and ring.keys.identify("Bearer one") is not None


@pytest.mark.integration
def test_a_reports_key_gets_403_on_metrics_and_a_metrics_key_on_reports(
        settings: Settings, topic_factory: Callable[..., str]) -> None:
    config = collector_settings(settings, topic_factory("scopes"), topic_factory("scopes-metrics"),
                                api_keys=("app:pub:reports", "srv:sec:metrics", "both:all"))
    prefix = unique_prefix()
    with running_collector(config) as runner:
        refused = _post(runner.url, "/v1/metrics", "pub", {"samples": [_sample()]})
        assert refused.status_code == 403
        assert refused.json()["error"] == ("key 'app' may not use /v1/metrics: it holds the scope(s) reports; "
                                           "/v1/metrics needs a key with the metrics scope")
        assert _post(runner.url, "/v1/reports", "sec", {"reports": [_report(prefix)]}).status_code == 403
        assert _post(runner.url, "/v1/reports", "pub", {"reports": [_report(prefix)]}).status_code == 202
        assert _post(runner.url, "/v1/metrics", "sec", {"samples": [_sample()]}).status_code == 202
        assert _post(runner.url, "/v1/metrics", "all", {"samples": [_sample()]}).status_code == 202  # old format


def _collect(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "outagewatch", "collect", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_the_demo_key_is_refused_off_loopback_and_the_error_names_the_setting(kafka_bootstrap: str,
                                                                             tmp_path: Path) -> None:
    env = {"OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap}
    refused = _collect(env, "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 1
    assert "refusing to listen on 0.0.0.0" in refused.stderr and "demo key" in refused.stderr
    assert "OUTAGEWATCH_COLLECTOR_ALLOW_DEMO_KEY=true" in refused.stderr
    assert "OUTAGEWATCH_COLLECTOR_API_KEYS" in refused.stderr
    # A key file holding it is refused the same way.
    path = tmp_path / "keys"
    path.write_text("demo:demo-key\n")
    refused = _collect({**env, "OUTAGEWATCH_COLLECTOR_API_KEYS_FILE": str(path)}, "--host", "0.0.0.0",
                       "--port", str(free_port()))
    assert refused.returncode == 1 and "demo key" in refused.stderr
    # Explicitly allowed, it serves (and loopback never needed it).
    port = free_port()
    with CollectorProcess(port, env={**env, "OUTAGEWATCH_COLLECTOR_ALLOW_DEMO_KEY": "true"},
                          extra_args=("--host", "0.0.0.0")) as collector:
        assert requests.get(collector.url + "/healthz", timeout=5).status_code == 200


@pytest.mark.integration
def test_a_key_added_to_the_file_is_accepted_and_a_removed_one_refused_without_a_restart(
        topic_factory: Callable[..., str], kafka_bootstrap: str, tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# the app key of 2026-a\napp-a:old-secret:reports\nops:sha256={digest_hex('ops-secret')}:metrics\n")
    env = {"OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap, "OUTAGEWATCH_TOPICS_CLIENT_REPORTS": topic_factory("rot"),
           "OUTAGEWATCH_COLLECTOR_API_KEYS_FILE": str(path), "OUTAGEWATCH_COLLECTOR_API_KEYS_RELOAD_SECONDS": "0.2"}
    prefix = unique_prefix()
    with CollectorProcess(free_port(), env=env, log_path=str(tmp_path / "collector.log")) as collector:
        url = collector.url
        assert _post(url, "/v1/reports", "old-secret", {"reports": [_report(prefix, 1)]}).status_code == 202
        assert _post(url, "/v1/reports", "new-secret", {"reports": [_report(prefix, 2)]}).status_code == 401
        assert _post(url, "/v1/reports", "demo-key", {"reports": [_report(prefix, 3)]}).status_code == 401
        # Rotation: the new key beside the old one, then the old one gone. Replaced atomically, as advised.
        staged = tmp_path / "keys.new"
        staged.write_text("app-a:old-secret:reports\napp-b:new-secret:reports\n")
        staged.replace(path)
        _wait_for(lambda: _post(url, "/v1/reports", "new-secret", {"reports": [_report(prefix, 4)]}).status_code == 202)
        assert _post(url, "/v1/reports", "old-secret", {"reports": [_report(prefix, 5)]}).status_code == 202
        staged.write_text("app-b:new-secret:reports\n")
        staged.replace(path)
        _wait_for(lambda: _post(url, "/v1/reports", "old-secret", {"reports": [_report(prefix, 6)]}).status_code == 401)
        # A broken file keeps the keys in use; SIGHUP reads it at once.
        path.write_text("app-b new-secret\n")
        assert collector.process is not None
        collector.process.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert _post(url, "/v1/reports", "new-secret", {"reports": [_report(prefix, 7)]}).status_code == 202
        metrics = requests.get(url + "/metrics", timeout=5).text
    log = (tmp_path / "collector.log").read_text()
    assert "keys reloaded from" in log and "added app-b" in log and "removed app-a" in log
    assert "keys not reloaded (SIGHUP)" in log and "still using the 1 key(s)" in log
    assert 'outagewatch_collector_key_reloads_total{outcome="loaded"} 2.0' in metrics
    assert 'outagewatch_collector_key_reloads_total{outcome="refused"}' in metrics


def _wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the collector did not pick up the new keys file"
        time.sleep(0.2)
