"""API keys: kept only as SHA-256 digests, compared in constant time.

>>> keys = ApiKeys.parse(("demo:demo-key", "ops:s3cret"))
>>> keys.identify("Bearer demo-key"), keys.identify("Bearer nope"), keys.identify(None)
('demo', None, None)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass


class KeyConfigError(ValueError):
    """An ``api_keys`` entry is not ``name:secret``."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class ApiKeys:
    """Key name by SHA-256 digest of its secret; the secrets themselves are not kept."""

    digests: tuple[tuple[str, bytes], ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> ApiKeys:
        pairs: list[tuple[str, bytes]] = []
        for entry in entries:
            name, sep, secret = entry.partition(":")
            if not sep or not name.strip() or not secret:
                raise KeyConfigError(
                    f"collector.api_keys entry {name.strip() or '?'!r} must be 'name:secret' with a non-empty secret"
                )
            pairs.append((name.strip(), _digest(secret)))
        return cls(tuple(pairs))

    def identify(self, authorization: str | None) -> str | None:
        """The key name for an ``Authorization: Bearer <key>`` header, or None.

        Every configured digest is compared (no early exit), so the time taken
        does not tell which key, or how much of one, matched.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        candidate = _digest(token.strip())
        found: str | None = None
        for name, digest in self.digests:
            if hmac.compare_digest(candidate, digest):
                found = name
        return found
