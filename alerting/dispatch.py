"""Dispatcher: deduplicate, notify with retries, log what was sent.

For each alert event and each notifier, the stages run in Alertmanager's
order: the alert stage's verdict (``Emitted.muted``: inhibition, silences,
applied once, in ``alerting.stage``) -> nflog (already told?) -> notify with
exponential backoff and full jitter for retryable errors -> nflog record.
A "resolved" is never muted: it reaches each receiver its "firing" reached,
so the page that was opened gets closed. Events of one fingerprint go out in
order; different fingerprints and receivers go out concurrently.

A notification that still fails with a retryable error after every attempt
is kept and tried again at the next ``send`` (a newer event of the same
alert replaces it), so a receiver outage delays pages but loses none.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from alerting.nflog import Nflog
from alerting.notify import Notifier, idempotency_key
from alerting.policy import NotifyPolicy
from alerting.stage import Emitted
from core.schemas import Alert

log = logging.getLogger("outagewatch.alerting.dispatch")

Result = Literal["delivered", "muted", "skipped", "failed"]


@dataclass(frozen=True)
class Outcome:
    receiver: str
    fingerprint: str
    status: str
    result: Result
    attempts: int = 0
    reason: str = ""


class Dispatcher:
    def __init__(
        self,
        notifiers: Sequence[Notifier],
        nflog: Nflog,
        policy: NotifyPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.notifiers = list(notifiers)
        self.nflog = nflog
        self.policy = policy or NotifyPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._undelivered: dict[tuple[str, str], Emitted] = {}

    @property
    def undelivered(self) -> list[Alert]:
        return [event.alert for event in self._undelivered.values()]

    async def send(self, events: Iterable[Emitted]) -> list[Outcome]:
        """Notify every receiver of each alert event; one ``Outcome`` per (event, receiver).

        A muted event is not sent (its outcome says why): the verdict is the
        stage's, taken when the event was emitted.
        """
        queues: dict[tuple[str, str], list[Emitted]] = {}
        for (receiver, fp), event in self._undelivered.items():
            queues.setdefault((receiver, fp), []).append(event)
        self._undelivered = {}
        for event in events:
            for notifier in self.notifiers:
                queues.setdefault((notifier.name, event.alert.fingerprint), []).append(event)
        by_name = {n.name: n for n in self.notifiers}
        runs = [
            self._in_order(by_name[receiver], queue) for (receiver, _), queue in queues.items() if receiver in by_name
        ]
        outcomes = [o for batch in await asyncio.gather(*runs) for o in batch]
        return outcomes

    async def _in_order(self, notifier: Notifier, events: list[Emitted]) -> list[Outcome]:
        return [await self._one(notifier, event) for event in events]

    async def _one(self, notifier: Notifier, event: Emitted) -> Outcome:
        alert, muted = event.alert, event.muted

        def outcome(result: Result, attempts: int = 0, reason: str = "") -> Outcome:
            return Outcome(notifier.name, alert.fingerprint, alert.status, result, attempts, reason)

        if muted is not None:
            log.info("not paging %s for %s %s: %s", notifier.name, alert.status, alert.fingerprint, muted)
            return outcome("muted", reason=muted)
        skip = self.nflog.skip_reason(notifier.name, alert)
        if skip is not None:
            log.debug("skipping %s for %s %s: %s", notifier.name, alert.status, alert.fingerprint, skip)
            return outcome("skipped", reason=skip)
        last = self.nflog.last(notifier.name, alert.fingerprint)
        renotify = last is not None and last.status == alert.status and last.starts_at == alert.starts_at
        key = idempotency_key(alert, renotify=renotify)
        attempt = 0
        while True:
            attempt += 1
            delivery = await notifier.notify(alert, key)
            if delivery.ok:
                self.nflog.record(notifier.name, alert)
                log.info("notified %s: %s %s (attempt %d)", notifier.name, alert.status, alert.summary, attempt)
                return outcome("delivered", attempt)
            if not delivery.retryable:
                log.error(
                    "%s rejected %s %s, not retrying: %s",
                    notifier.name,
                    alert.status,
                    alert.fingerprint,
                    delivery.reason,
                )
                return outcome("failed", attempt, delivery.reason)
            if attempt >= self.policy.max_attempts:
                log.warning(
                    "%s still failing for %s %s after %d attempts (%s); will retry at the next send",
                    notifier.name,
                    alert.status,
                    alert.fingerprint,
                    attempt,
                    delivery.reason,
                )
                self._undelivered[(notifier.name, alert.fingerprint)] = event
                return outcome("failed", attempt, delivery.reason)
            delay = self.policy.backoff(attempt, self._rng.random())
            log.warning(
                "%s failed for %s (%s); retry %d in %.2f s",
                notifier.name,
                alert.fingerprint,
                delivery.reason,
                attempt,
                delay,
            )
            await self._sleep(delay)

    async def close(self) -> None:
        await asyncio.gather(*(n.close() for n in self.notifiers))
