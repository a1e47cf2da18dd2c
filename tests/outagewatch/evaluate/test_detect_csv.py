from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from outagewatch.cli import main


def _write(path: Path, rows: list[tuple[str, str]], header: str = "timestamp,value") -> Path:
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def test_scores_every_row_streaming_and_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    values = rng.poisson(40, 20_000).astype(float)
    values[15_000:15_005] += 400
    rows = [(str(1_795_323_600 + 10 * i), f"{v:g}") for i, v in enumerate(values)]
    source = _write(tmp_path / "in.csv", rows)
    started = time.perf_counter()
    assert main(["detect-csv", str(source), str(tmp_path / "out.csv")]) == 0
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[bench] detect-csv: 20000 rows in {seconds:.2f} s")
    with open(tmp_path / "out.csv", newline="") as handle:
        out = list(csv.reader(handle))
    assert out[0] == ["timestamp", "value", "anomaly_score"]
    assert [row[:2] for row in out[1:]] == [list(row) for row in rows]
    scores = [float(row[2]) for row in out[1:]]
    assert all(0.0 <= s <= 1.0 for s in scores)
    # The general profile: a burst is news at its start, and noise stays quiet.
    assert scores[15_000] >= 0.5
    assert sum(s >= 0.5 for s in scores) <= 10

    # Streaming: the scores of a prefix do not depend on what follows it.
    prefix = _write(tmp_path / "prefix.csv", rows[:15_003])
    assert main(["detect-csv", str(prefix), str(tmp_path / "prefix-out.csv")]) == 0
    with open(tmp_path / "prefix-out.csv", newline="") as handle:
        assert list(csv.reader(handle)) == out[:15_004]


@pytest.mark.parametrize(("content", "message"), [
    ("time,value\n1,2\n", "line 1: header must be 'timestamp,value'"),
    ("timestamp,value\n1,2\n2,abc\n", "line 3: value 'abc' is not a number"),
    ("timestamp,value\n1,2\n2,nan\n", "line 3: value 'nan' is not a finite number"),
    ("timestamp,value\n1,2,3\n", "line 2: expected 2 columns"),
    ("", "line 1: header must be"),
])
def test_bad_input_is_a_clear_error_and_leaves_no_output(tmp_path: Path, content: str, message: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text(content)
    assert main(["detect-csv", str(source), str(tmp_path / "out.csv")]) == 1
    assert message in capsys.readouterr().err  # main() logs to stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_missing_input_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect-csv", str(tmp_path / "absent.csv"), str(tmp_path / "out.csv")]) == 1
    assert "absent.csv" in capsys.readouterr().err


def _scores(path: Path) -> list[float]:
    with open(path, newline="") as handle:
        return [float(row[2]) for row in list(csv.reader(handle))[1:]]


def test_default_profile_sees_drops_and_level_shifts_the_room_profile_does_not(tmp_path: Path) -> None:
    """A CPU-like series (not counts) that drops to a new level: the default flags it once, then follows it."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0.6, 0.02, 3000), rng.normal(0.2, 0.02, 3000)])
    source = _write(tmp_path / "in.csv", [(str(1_795_323_600 + 300 * i), f"{v:.4f}") for i, v in enumerate(values)])
    assert main(["detect-csv", str(source), str(tmp_path / "general.csv")]) == 0
    assert main(["detect-csv", str(source), str(tmp_path / "room.csv"), "--direction", "up", "--shift-after", "0",
                 "--no-calibrate", "--counts", "no"]) == 0
    general, room = _scores(tmp_path / "general.csv"), _scores(tmp_path / "room.csv")
    alarms = [i for i, s in enumerate(general) if s >= 0.5]
    after = [i for i in alarms if i >= 3000]
    assert after and after[0] == 3000 and after[-1] < 3006  # the drop at once, then the new level is normal
    assert max(room[3000:3100]) == 0.0  # "up" never scores the drop
    assert len([i for i in alarms if i < 3000]) <= 3
