"""Alerting: decisions in, alert events out, notifications with no double pages.

Stages, as in Prometheus Alertmanager: ``lifecycle`` (pending, firing,
resolved per fingerprint), ``correlate`` (cluster and global incidents),
``inhibit`` and ``silence`` (both ``Muter``), ``stage`` (the muters applied
once: each event's paging verdict, held pages released), ``dispatch``
(nflog, retry), ``notify`` (one module per receiver), ``nflog`` (what was
sent). ``engine.AlertEngine`` is the lifecycle and correlation facade;
``stage.AlertStage`` is what a worker calls. No Kafka client here.
"""

from alerting.dispatch import Dispatcher, Outcome
from alerting.engine import AlertEngine, restore_engine, save_state
from alerting.nflog import Nflog
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted

__all__ = ["AlertEngine", "AlertStage", "AlertingPolicy", "Dispatcher", "Emitted", "Nflog", "Outcome",
           "restore_engine", "save_state"]
