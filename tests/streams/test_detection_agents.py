"""The alerting agent's stepping of one batch of decision values (``streams.detection_agents.alert_steps``)."""

from __future__ import annotations

from alerting.engine import AlertEngine
from alerting.policy import AlertingPolicy, LifecyclePolicy
from core.timeutil import ManualClock
from streams.detection_agents import alert_steps, newest
from tests.alerting.helpers import T0, WINDOW_MS, decision


def test_a_lagging_partition_delivering_minutes_at_once_resolves_its_alert_on_its_own_windows() -> None:
    wall = [0.0]
    engine = AlertEngine(AlertingPolicy(lifecycle=LifecyclePolicy(pending_windows=1, stale_seconds=60)),
                         ManualClock(T0), wall=lambda: wall[0])
    # The fast partition is 30 windows (5 minutes) in; the slow one has been silent (wall time) since its start.
    engine.note_progress({"room-health:0": T0 + WINDOW_MS})
    wall[0] = 100.0
    for window in range(30):
        engine.note_progress({"room-health:1": T0 + (window + 1) * WINDOW_MS})
        engine.process([decision("fast-room", window, False)])
    # Then the slow partition wakes up with 20 windows in one batch: its room fails in the first, then recovers.
    slow = [decision("slow-room", window, window == 1) for window in range(1, 21)]
    sources: dict[str, int] = {}
    newest(sources, {"room-health:0": T0 + 10 * WINDOW_MS})
    newest(sources, {"room-health:0": T0 + 21 * WINDOW_MS, "room-health:1": T0 + 30 * WINDOW_MS})
    assert sources == {"room-health:0": T0 + 21 * WINDOW_MS, "room-health:1": T0 + 30 * WINDOW_MS}
    steps = []
    for batch, summaries, progress in alert_steps(slow, [], sources):
        engine.note_progress(progress)
        steps.append([(a.status, batch[0].window_end) for a in engine.process(batch, summaries)])
    events = [event for step in steps for event in step]
    resolve_windows = engine.policy.lifecycle.resolve_windows
    # Fired on its bad window, resolved by its good ones: not as stale in the step it fired in, because the
    # partition's newest window (21) was counted as reached before its older ones were judged.
    assert events == [("firing", T0 + 2 * WINDOW_MS), ("resolved", T0 + (2 + resolve_windows) * WINDOW_MS)]
