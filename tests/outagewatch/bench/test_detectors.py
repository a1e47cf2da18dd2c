"""Smoke run of `outagewatch bench detectors --quick` (the lead measures the real figures)."""

from __future__ import annotations

import pytest

from outagewatch.bench import detectors as bench


def test_quick_bench_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    results = bench.run(quick=True)
    with capsys.disabled():
        for result in results:
            print(f"\n[bench] {result}")
    names = [result["detector"] for result in results]
    assert names == ["volume_baseline", "error_ratio", "cusum", "audience", "server_anomaly", "room_ensemble",
                     "detect_csv"]
    assert all(value > 0 for result in results for key, value in result.items() if key.endswith("_s") or key.startswith("us_"))
