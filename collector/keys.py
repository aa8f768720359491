"""Ingest-key checking: constant-time comparison, keys never logged or echoed.

Use :meth:`KeyRing.match` with the candidate from ``X-Ingest-Key`` or
``?key=``; it returns the matching configured key (the rate limiter's bucket
id) or None.

>>> ring = KeyRing(frozenset({"k-0123456789"}))
>>> ring.match("k-0123456789"), ring.match("nope")
('k-0123456789', None)
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

HEADER = b"x-ingest-key"
QUERY_PARAM = "key"
MAX_KEY_BYTES = 256


class KeyRing:
    """The configured ingest keys."""

    def __init__(self, keys: frozenset[str]) -> None:
        self._keys = tuple(k.encode() for k in sorted(keys))

    def __repr__(self) -> str:  # never show the keys themselves
        return f"KeyRing(<{len(self._keys)} keys>)"

    def match(self, candidate: str | bytes | None) -> str | None:
        """The configured key equal to ``candidate``, compared in constant time."""
        if not candidate:
            return None
        cand = candidate.encode() if isinstance(candidate, str) else candidate
        if len(cand) > MAX_KEY_BYTES:
            return None
        found: bytes | None = None
        # Compare against every key, no early exit: the time taken does not
        # reveal which key (or which prefix) matched.
        for key in self._keys:
            if hmac.compare_digest(cand, key):
                found = key
        return found.decode() if found is not None else None


def candidate_from(headers: list[tuple[bytes, bytes]], query_string: bytes) -> bytes | None:
    """The key a request presents: the header first, then the ``key`` query parameter."""
    for name, value in headers:
        if name == HEADER:
            return value
    if query_string:
        for qname, qvalue in parse_qsl(query_string.decode("latin-1"), errors="replace"):
            if qname == QUERY_PARAM:
                return qvalue.encode("utf-8", errors="replace")
    return None
