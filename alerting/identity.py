"""What names an alert: its fingerprint and the label set routing sees.

The fingerprint depends on (scope, key, kind) only, so it survives restarts,
severity changes and new evidence; it is the Kafka key of the ``alerts``
topic, PagerDuty's ``dedup_key`` and the nflog key.

>>> fingerprint("room", "room-17", "details_not_available")
'4676650f04e6de4c'
>>> fingerprint("room", "room-17", "details_not_available") == fingerprint("room", "room-17", "crash")
False
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from core.schemas import Alert


# Every decision of every window asks for its key's fingerprint; the keys repeat.
@lru_cache(maxsize=1 << 17)
def fingerprint(scope: str, key: str, kind: str) -> str:
    """16 hex digits of SHA-256 over the three parts (Alertmanager's width)."""
    # JSON quoting keeps the parts apart: ("a", "b,c") cannot collide with ("a,b", "c").
    digest = hashlib.sha256(json.dumps([scope, key, kind]).encode()).hexdigest()
    return digest[:16]


def alert_labels(alert: Alert) -> dict[str, str]:
    """Labels that silences match and Alertmanager routes on.

    Identity labels win over free-form decision labels of the same name.
    """
    labels = dict(alert.labels)
    labels.update(
        alertname=alert.kind,
        scope=alert.scope,
        key=alert.key,
        kind=alert.kind,
        severity=alert.severity,
    )
    return labels
