"""`outagewatch evaluate --sweep`: a --quick run's board, table, misses and pages, and what it refuses."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from outagewatch.evaluate import scoreboard
from outagewatch.evaluate.sweep import Job, run_draw
from outagewatch.simulator.families import QUICK

FAMILIES = "room_small,crash_stop,spammer"
PAGE_KEYS = {"family", "seed", "fingerprint", "status", "scope", "key", "kind", "severity", "starts_at", "event_ts",
             "summary", "evidence", "matched"}


def evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "outagewatch", "evaluate", *args], capture_output=True, text=True,
                          timeout=600, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    pages = tmp_path_factory.mktemp("sweep") / "pages.ndjson"
    done = evaluate("--sweep", "--quick", "--families", FAMILIES, "--seeds", "2", "--jobs", "2", "--json",
                    "--alerts-out", str(pages))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), [json.loads(line) for line in pages.read_text().splitlines()], done.stderr


def test_the_board_has_a_row_per_family_and_totals_that_add_up(quick: tuple[dict[str, Any], list[Any], str]) -> None:
    board, _, _ = quick
    rows = {row["family"]: row for row in board["families"]}
    assert set(rows) == set(FAMILIES.split(","))
    assert [rows[f]["kind"] for f in ("room_small", "crash_stop", "spammer")] == ["loud", "silent", "negative"]
    total = board["total"]
    for name in ("draws", "incidents", "detected", "false_pages", "alerts", "reports"):
        assert total[name] == sum(row[name] for row in rows.values()), name
    assert total["draws"] == 6 and rows["room_small"]["incidents"] == 2 and rows["spammer"]["incidents"] == 0
    assert rows["crash_stop"]["silent"]["incidents"] == 2 and rows["room_small"]["silent"]["incidents"] == 0
    loud = rows["room_small"]["loud"]
    assert loud["5+/min"]["incidents"] + loud["<5/min"]["incidents"] == 2
    assert rows["spammer"]["negative_pages"] == rows["spammer"]["alerts"] == rows["spammer"]["false_pages"]
    assert set(board["bar"]) >= {"loud_recall", "p95_5+/min_s", "silent_recall", "false_pages_per_100_room_days",
                                 "negative_pages", "incidents", "negative_hours"}
    assert board["bar"]["incidents"] == {"value": 4.0, "limit": 200, "holds": False}
    assert board["run"]["draws"] == 6 and board["run"]["cpu_us_per_report"] > 0


def test_misses_and_false_pages_name_their_draw(quick: tuple[dict[str, Any], list[Any], str]) -> None:
    board, _, _ = quick
    missed = board["misses"]["missed"]
    assert len(missed) == board["total"]["incidents"] - board["total"]["detected"]
    assert len(board["misses"]["false_pages"]) == board["total"]["false_pages"]
    for item in missed:
        assert item["reproduce"] == f"outagewatch simulate --family {item['family']} --seed {item['seed']} --quick"
        assert item["id"].startswith(f"{item['family']}-{item['seed']}-")


def test_alerts_out_holds_every_page_and_what_it_matched(quick: tuple[dict[str, Any], list[Any], str]) -> None:
    board, pages, _ = quick
    assert all(set(page) >= PAGE_KEYS for page in pages)
    firing = {(p["family"], p["seed"], p["fingerprint"], p["starts_at"]) for p in pages if p["status"] == "firing"}
    assert len(firing) == board["total"]["alerts"]
    false = {(p["family"], p["seed"], p["fingerprint"], p["starts_at"]) for p in pages if p["matched"] is False}
    assert len(false) == board["total"]["false_pages"]
    for page in pages:
        if page["matched"] is not False:
            assert all(ident.startswith(f"{page['family']}-{page['seed']}-") for ident in page["matched"])


def test_progress_goes_to_stderr_a_line_per_draw(quick: tuple[dict[str, Any], list[Any], str]) -> None:
    _, _, stderr = quick
    assert stderr.count("CPU s (") == 6 and "[6/6]" in stderr


def test_the_table_shows_each_family_the_total_and_the_bar(quick: tuple[dict[str, Any], list[Any], str]) -> None:
    board, _, _ = quick
    text = scoreboard.table(board)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["family", "kind", "draws"]
    assert any(line.startswith("room_small ") for line in lines) and any(line.startswith("total ") for line in lines)
    assert "targets:" in text and "FAILS  incidents: 4.0 (limit 200)" in text


def test_a_draw_scores_the_same_every_time() -> None:
    job = Job("spammer", 1, QUICK)
    first, again = run_draw(job), run_draw(job)
    assert dataclasses.replace(first, cpu_s=0.0) == dataclasses.replace(again, cpu_s=0.0)
    assert first.room_days > 0 and first.reports > 10_000


def test_what_the_sweep_refuses_it_says() -> None:
    done = evaluate("--sweep", "--families", "room_small,nope")
    assert done.returncode == 2 and "unknown families nope" in done.stderr
    done = evaluate("--sweep", "--reports", "r.ndjson")
    assert done.returncode == 2 and "--sweep generates its own recordings" in done.stderr
    done = evaluate()
    assert done.returncode == 2 and "give --reports and --labels" in done.stderr


def test_the_quick_run_leaves_no_file_behind(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "outagewatch", "evaluate", "--sweep", "--quick", "--families",
                           "spammer", "--jobs", "1"], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "spammer" in done.stdout and list(tmp_path.iterdir()) == []


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_a_terminated_sweep_stops_its_workers() -> None:
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "outagewatch", "evaluate", "--sweep", "--quick", "--families",
                                "background,spammer", "--jobs", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = {pid for pid in _children(process.pid) if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()}
        assert len(workers) == 2, "the sweep started its two workers"
        time.sleep(2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "no worker outlives the sweep"
    finally:
        if process.poll() is None:
            process.kill()
