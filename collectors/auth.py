"""API keys: kept only as SHA-256 digests, compared in constant time, each with the scopes it holds.

An entry is ``name:secret[:scopes]``, or ``name:sha256=<64 hex>[:scopes]`` to
store the digest instead of the secret. Scopes are joined by ``+``:

- ``reports``: ``POST /v1/reports``. Assume such a key is public: it ships inside every client app.
- ``metrics``: ``POST /v1/metrics`` (and any future OTLP/remote-write receiver): servers only, secret.
- ``relay``: an edge tier that batches many clients' reports: the collector keeps the ``source``
  and ``weight`` its reports carry instead of stamping its own, and applies no per-source limit.

An entry without scopes holds ``reports+metrics``, what every key could do
before scopes existed, so existing configurations keep working (the
collector logs a warning naming such keys). The last ``:``-part is read as
scopes only when it is made of scope names, so a secret may contain ``:``.

>>> keys = ApiKeys.parse(("demo:demo-key", "ops:s3cret:metrics", "app:pub:reports"))
>>> [keys.identify(token).name for token in ("Bearer demo-key", "Bearer s3cret")]
['demo', 'ops']
>>> keys.identify("Bearer pub").may("metrics"), keys.identify("Bearer nope"), keys.identify(None)
(False, None, None)
>>> sorted(ApiKeys.parse(["srv:sha256=" + digest_hex("s3cret") + ":metrics+relay"]).identify("Bearer s3cret").scopes)
['metrics', 'relay']
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

SCOPES = ("reports", "metrics", "relay")
# What an entry written before scopes existed could do, and still may.
LEGACY_SCOPES = frozenset({"reports", "metrics"})
# The key in the README and the defaults: public, so never to be served off loopback.
DEMO_SECRET = "demo-key"
DIGEST_PREFIX = "sha256="


class KeyConfigError(ValueError):
    """An ``api_keys`` entry (or keys file line) that cannot be used; the message says which and why."""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def digest_hex(secret: str) -> str:
    """The SHA-256 of a secret as a keys file may store it (``name:sha256=<this>``).

    >>> digest_hex("demo-key")[:16]
    'c48a01f49fd0f2cc'
    """
    return _digest(secret).hex()


DEMO_DIGEST = _digest(DEMO_SECRET)


@dataclass(frozen=True)
class Key:
    name: str
    digest: bytes
    scopes: frozenset[str]
    # No scopes written: LEGACY_SCOPES, and a warning at start-up.
    legacy: bool = False

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    def __repr__(self) -> str:  # never the digest: it is as good as the secret for an offline guess
        return f"Key({self.name!r}, {'+'.join(sorted(self.scopes))})"


def _scopes(text: str) -> frozenset[str] | None:
    """The scopes named by ``text`` (``reports+metrics``), or None when it is not a scope list."""
    names = [part.strip() for part in text.split("+")]
    if names and all(name in SCOPES for name in names):
        return frozenset(names)
    return None


def parse_entry(entry: str, where: str = "collector.api_keys entry") -> Key:
    """One ``name:secret[:scopes]`` (or ``name:sha256=<hex>[:scopes]``) entry.

    >>> parse_entry("b:second:with:colons")
    Key('b', metrics+reports)
    >>> parse_entry("app:pub:reports+oops")
    Traceback (most recent call last):
    ...
    collectors.auth.KeyConfigError: collector.api_keys entry 'app': unknown scope(s) oops; scopes are reports, metrics, relay joined by '+'
    """
    name, sep, rest = entry.partition(":")
    name = name.strip()
    if not sep or not name or not rest:
        raise KeyConfigError(f"{where} {name or '?'!r} must be 'name:secret[:scopes]' with a non-empty secret")
    secret, scopes, legacy = rest, LEGACY_SCOPES, True
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        named = _scopes(tail)
        if named is not None:
            secret, scopes, legacy = head, named, False
        elif "+" in tail and any(part.strip() in SCOPES for part in tail.split("+")):
            unknown = sorted(part.strip() for part in tail.split("+") if part.strip() not in SCOPES)
            raise KeyConfigError(f"{where} {name!r}: unknown scope(s) {', '.join(unknown)}; scopes are "
                                 f"{', '.join(SCOPES)} joined by '+'")
    if secret.startswith(DIGEST_PREFIX):
        text = secret[len(DIGEST_PREFIX):].strip().lower()
        try:
            digest = bytes.fromhex(text)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise KeyConfigError(f"{where} {name!r}: {DIGEST_PREFIX} must be followed by 64 hex digits "
                                 "(the SHA-256 of the secret, e.g. printf %s SECRET | sha256sum)")
        return Key(name, digest, scopes, legacy)
    return Key(name, _digest(secret), scopes, legacy)


def secret_of(entry: str) -> str:
    """The secret of a ``name:secret[:scopes]`` entry (what a client sends as its bearer token).

    >>> secret_of("demo:demo-key"), secret_of("fleet:s3:cret:reports+relay")
    ('demo-key', 's3:cret')
    """
    name, _, rest = entry.partition(":")
    head, colon, tail = rest.rpartition(":")
    return head if colon and head and _scopes(tail) is not None else rest


@dataclass(frozen=True)
class ApiKeys:
    """The keys a collector accepts; the secrets themselves are not kept."""

    keys: tuple[Key, ...]

    @classmethod
    def parse(cls, entries: Iterable[str], where: str = "collector.api_keys entry") -> ApiKeys:
        return cls.of([parse_entry(entry, where) for entry in entries], "collector.api_keys")

    @classmethod
    def of(cls, keys: list[Key], where: str) -> ApiKeys:
        """Keys under distinct names (a name is what logs, metrics and the source stamp know a key by)."""
        names = [key.name for key in keys]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise KeyConfigError(f"{where}: key name(s) {', '.join(repeated)} appear more than once; give each "
                                 "key its own name (a rotation lists the old and the new key under two names)")
        return cls(tuple(keys))

    @property
    def holds_demo_key(self) -> bool:
        return any(hmac.compare_digest(key.digest, DEMO_DIGEST) for key in self.keys)

    @property
    def legacy_names(self) -> list[str]:
        return [key.name for key in self.keys if key.legacy]

    def identify(self, authorization: str | None) -> Key | None:
        """The key for an ``Authorization: Bearer <key>`` header, or None.

        Every configured digest is compared (no early exit), so the time taken
        does not tell which key, or how much of one, matched.
        """
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        candidate = _digest(token.strip())
        found: Key | None = None
        for key in self.keys:
            if hmac.compare_digest(candidate, key.digest):
                found = key
        return found
