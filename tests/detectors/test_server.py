from __future__ import annotations

import json

import numpy as np

from detectors.server import ServerAnomaly
from outagewatch.simulator.synthetic import service_windows


def test_broken_service_windows_score_past_the_alarm_and_normal_ones_do_not() -> None:
    windows = service_windows(np.random.default_rng(0), 400, incident=range(300, 320))
    detector = ServerAnomaly(seed=3)
    scores = []
    for window in windows:
        score = detector.score_one(window.metrics)
        scores.append(score)
        if score < 0.5:
            detector.learn_one(window.metrics)
    assert all(score >= 0.5 for score in scores[300:320])
    assert max(scores[:300] + scores[320:]) < 0.5


def test_joint_anomaly_each_metric_in_range() -> None:
    """High CPU with low latency: each value seen before, the pair never."""
    rng = np.random.default_rng(2)
    detector = ServerAnomaly(min_train=100, seed=0)
    for _ in range(100):
        cpu = float(rng.uniform(0.1, 0.9))
        detector.learn_one({"cpu": cpu, "latency_ms": 50 + 200 * cpu + float(rng.normal(0, 5))})
    assert detector.score_one({"cpu": 0.85, "latency_ms": 70.0}) > detector.score_one({"cpu": 0.85, "latency_ms": 220.0})


def test_retrains_on_schedule_and_follows_growing_load() -> None:
    detector = ServerAnomaly(min_train=20, retrain_every=10, window=40, seed=0)
    rng = np.random.default_rng(4)
    for step in range(200):
        detector.learn_one({"rps": 1000 + 10 * step + float(rng.normal(0, 20))})
    assert detector.score_one({"rps": 1000 + 10 * 200}) < 0.5  # yesterday's normal would call this extreme


def test_missing_metrics_take_the_training_median_and_new_ones_join_later() -> None:
    detector = ServerAnomaly(min_train=20, retrain_every=20, window=40, seed=0)
    rng = np.random.default_rng(5)
    for _ in range(20):
        detector.learn_one({"cpu": float(rng.normal(0.4, 0.02))})
    assert detector.score_one({}) < 0.5
    for _ in range(20):
        detector.learn_one({"cpu": float(rng.normal(0.4, 0.02)), "queue": float(rng.normal(5, 1))})
    assert detector.explain({"cpu": 0.4, "queue": 500.0})[0][0] == "queue"


def test_state_is_compact_json_and_rebuilds_the_same_forest() -> None:
    windows = service_windows(np.random.default_rng(1), 120)
    detector = ServerAnomaly(seed=9)
    for window in windows:
        detector.learn_one(window.metrics)
    encoded = json.dumps(detector.to_state())
    assert len(encoded) < 60_000
    restored = ServerAnomaly.from_state(json.loads(encoded))
    probe = {"cpu": 0.9, "latency_p99_ms": 400.0, "errors_per_s": 40.0, "connections": 19_000.0}
    assert restored.score_one(probe) == detector.score_one(probe)
