"""`outagewatch evaluate` end to end on small generated recordings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.schemas import MetricSample, encode
from core.timeutil import SystemClock, format_ms
from outagewatch.evaluate.replay import CONTRACT_KEYS
from tests.streams.detection_scenarios import SPIKE_ROOM, T0, spike, world

WINDOW_MS = 10_000


def outagewatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "outagewatch", *args], capture_output=True, text=True,
                          timeout=240, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **(env or {})})


def evaluate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return outagewatch("evaluate", *args, env=env)


def write_recording(folder: Path, spikes: dict[str, range], incidents: list[dict[str, str]],
                    start_ms: int = T0) -> list[str]:
    reports, labels, metrics = folder / "reports.ndjson", folder / "labels.json", folder / "metrics.ndjson"
    with reports.open("wb") as out:
        for report in world(30, WINDOW_MS, {room: spike(windows) for room, windows in spikes.items()}, rooms=12,
                            start_ms=start_ms):
            out.write(encode(report) + b"\n")
    with metrics.open("wb") as out:
        for window in range(30):
            for host in range(3):
                out.write(encode(MetricSample(ts=start_ms + window * WINDOW_MS + host, service="audio",
                                              host=f"h{host}", name="cpu", value=0.4 + 0.01 * host,
                                              cluster="eu")) + b"\n")
    labels.write_text(json.dumps({"incidents": incidents}))
    return ["--reports", str(reports), "--labels", str(labels), "--metrics", str(metrics)]


def incident(room: str, start_window: int, end_window: int, start_ms: int = T0) -> dict[str, str]:
    return {"id": f"{room}-{start_window}", "scope": "room", "key": room, "kind": "details_not_available",
            "start": format_ms(start_ms + start_window * WINDOW_MS), "end": format_ms(start_ms + end_window * WINDOW_MS)}


def test_evaluate_prints_the_contract_object_for_a_detected_spike(tmp_path: Path) -> None:
    args = write_recording(tmp_path, {SPIKE_ROOM: range(15, 18)}, [incident(SPIKE_ROOM, 15, 18)])
    done = evaluate(*args)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert tuple(result) == CONTRACT_KEYS
    assert (result["incidents"], result["detected"], result["recall"], result["false_alerts"]) == (1, 1, 1.0, 0)
    assert result["precision"] == 1.0 and result["f1"] == 1.0 and result["alerts"] >= 1
    assert 0 < result["delay_s"]["p50"] <= result["delay_s"]["max"] <= 30
    assert result["false_alerts_per_room_day"] == 0.0


def test_an_operators_live_silence_does_not_change_the_score(tmp_path: Path) -> None:
    # A silence an operator set with the CLI, in the store the worker reads, over the failing room: a
    # recording of the same hours must still score its page (the replay reads no machine's silences).
    silences = {"OUTAGEWATCH_ALERTING_SILENCES_PATH": str(tmp_path / "silences.json")}
    added = outagewatch("silence", "add", "--match", f"key={SPIKE_ROOM}", "--duration", "2h",
                        "--comment", "CDN maintenance", env=silences)
    assert added.returncode == 0, added.stderr
    start = SystemClock().now_ms() // WINDOW_MS * WINDOW_MS + WINDOW_MS  # the recording starts after the silence
    args = write_recording(tmp_path, {SPIKE_ROOM: range(15, 18)}, [incident(SPIKE_ROOM, 15, 18, start)], start)
    assert added.stdout.strip() in outagewatch("silence", "list", env=silences).stdout  # still active
    without, silenced = evaluate(*args), evaluate(*args, env=silences)
    assert silenced.returncode == 0, silenced.stderr
    result = json.loads(silenced.stdout)
    assert (result["detected"], result["recall"], result["false_alerts"]) == (1, 1.0, 0)
    assert result == json.loads(without.stdout)


def test_an_unlabelled_spike_is_a_false_alert_per_room_day(tmp_path: Path) -> None:
    args = write_recording(tmp_path, {SPIKE_ROOM: range(15, 18)}, [])
    result = json.loads(evaluate(*args).stdout)
    assert (result["incidents"], result["recall"], result["false_alerts"], result["precision"]) == (0, 1.0, 1, 0.0)
    room_days = 12 * (29 * WINDOW_MS + 5_000) / 86_400_000  # 12 rooms over the reports' span
    assert abs(result["false_alerts_per_room_day"] - round(1 / room_days, 4)) < 0.01 * result["false_alerts_per_room_day"]
    assert result["delay_s"] == {"p50": None, "p95": None, "max": None}


def test_a_missed_incident_counts_against_recall(tmp_path: Path) -> None:
    args = write_recording(tmp_path, {}, [incident("room-2", 10, 12)])
    result = json.loads(evaluate(*args).stdout)
    assert (result["incidents"], result["detected"], result["recall"], result["alerts"]) == (1, 0, 0.0, 0)


def test_a_malformed_line_is_a_clear_error_naming_file_and_line(tmp_path: Path) -> None:
    args = write_recording(tmp_path, {}, [])
    reports = Path(args[1])
    reports.write_bytes(reports.read_bytes() + b'{"report_id": "x"}\n')
    done = evaluate(*args)
    assert done.returncode == 1 and done.stdout == ""
    lines = len(reports.read_bytes().splitlines())
    assert f"reports.ndjson:{lines}: not a client report" in done.stderr


def test_bad_labels_fail_before_the_replay(tmp_path: Path) -> None:
    args = write_recording(tmp_path, {}, [{"id": "x", "scope": "room", "key": "r", "start": "soon", "end": "later"}])
    done = evaluate(*args)
    assert done.returncode == 1 and "labels.json" in done.stderr and "start" in done.stderr


def test_help_explains_every_flag() -> None:
    done = evaluate("--help")
    assert done.returncode == 0
    for flag in ("--reports", "--labels", "--metrics"):
        assert flag in done.stdout
