"""When to retry a ClickHouse write, and how long to wait before the next try.

>>> policy = Backoff(initial_seconds=0.5, max_seconds=8.0)
>>> [policy.delay(attempt, random=lambda: 1.0) for attempt in range(6)]
[0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
>>> [policy.delay(attempt, random=lambda: 0.0) for attempt in range(3)]
[0.25, 0.5, 1.0]
>>> is_retryable(ConnectionRefusedError(111, "refused")), is_retryable(TypeError("bad value"))
(True, False)
"""

from __future__ import annotations

import random as _random
import socket
from collections.abc import Callable
from dataclasses import dataclass

# ClickHouse server error codes worth waiting out: overload, timeouts,
# network, "too many parts" (merges will catch up), read-only replica.
RETRYABLE_SERVER_CODES = frozenset({
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY (replica lost ZooKeeper)
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    252,  # TOO_MANY_PARTS
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
    # A cluster's: its coordinator restarting, a shard's replica gone while the insert was forwarded.
    225,  # NO_ZOOKEEPER
    999,  # KEEPER_EXCEPTION
    279,  # ALL_CONNECTION_TRIES_FAILED
    285,  # TOO_FEW_LIVE_REPLICAS
    32,  # ATTEMPT_TO_READ_AFTER_EOF
})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter": half fixed, half random.

    The fixed half guarantees the server gets a real pause; the random half
    keeps several sinks from retrying in lockstep after a shared outage.
    """

    initial_seconds: float = 0.5
    max_seconds: float = 30.0
    multiplier: float = 2.0

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        ceiling = min(self.max_seconds, self.initial_seconds * self.multiplier ** attempt)
        return ceiling / 2 + ceiling / 2 * random()


def is_retryable(exc: BaseException) -> bool:
    """Network trouble and server overload are retryable; bad data is not."""
    from clickhouse_driver import errors

    if isinstance(exc, (errors.NetworkError, errors.SocketTimeoutError, errors.UnexpectedPacketFromServerError,
                        ConnectionError, socket.timeout, TimeoutError, EOFError)):
        return True
    if isinstance(exc, errors.ServerException):
        return exc.code in RETRYABLE_SERVER_CODES
    return isinstance(exc, OSError)
