"""`outagewatch evaluate --alerts-out` on a family draw written by `outagewatch simulate --family`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from detectors.evaluation import parse_labels


def outagewatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "outagewatch", *args], capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


def test_a_written_draw_evaluates_and_every_page_says_what_it_matched(tmp_path: Path) -> None:
    out = tmp_path / "draw"
    done = outagewatch("simulate", "--family", "cluster_failure", "--seed", "0", "--quick", "--out", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert sorted(path.name for path in out.iterdir()) == ["draw.json", "labels.json", "reports.ndjson"]
    assert summary["reports"] == len((out / "reports.ndjson").read_bytes().splitlines())
    labels = json.loads((out / "labels.json").read_text())
    (incident,) = labels["incidents"]
    assert {"silent", "loud_from", "peak_clients_per_min"} <= set(incident) and incident["scope"] == "cluster"
    assert json.loads((out / "draw.json").read_text())["family"] == "cluster_failure"

    pages = tmp_path / "pages.ndjson"
    done = outagewatch("evaluate", "--reports", str(out / "reports.ndjson"), "--labels", str(out / "labels.json"),
                       "--alerts-out", str(pages))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    records = [json.loads(line) for line in pages.read_text().splitlines()]
    assert records, "the cluster failure pages"
    ids = {i.id for i in parse_labels(labels)}
    for record in records:
        assert {"fingerprint", "status", "scope", "key", "kind", "severity", "starts_at", "event_ts", "summary",
                "evidence", "labels", "matched"} <= set(record)
        assert record["matched"] is False or set(record["matched"]) <= ids
        assert record["event_ts"].endswith("Z") and all("detector" in e for e in record["evidence"])
    firing = {(r["fingerprint"], r["starts_at"]) for r in records if r["status"] == "firing"}
    false = {(r["fingerprint"], r["starts_at"]) for r in records if r["matched"] is False}
    assert len(firing) == result["alerts"] and len(false) == result["false_alerts"]
    assert (result["detected"] == 1) == any(r["matched"] for r in records if r["status"] == "firing")
