"""Stable pseudonyms for printer-API user names: a keyed hash, HMAC-SHA-256 truncated.

A user name is personal data. The collector turns it into ``u-`` + 12 hex digits of
HMAC-SHA-256(secret, site + NUL + user) before anything is stored or shown (server/ingest.py),
so the same account gives the same pseudonym in every run, view and report as long as the
secret stays the same, and nobody without the secret can compute or reverse one. The site is
part of the input because accounts are local to a site (an OctoPrint user belongs to one
OctoPrint): "anna" at two sites is two accounts, and two pseudonyms.

48 bits: two accounts of one site share a pseudonym with odds of about n²/2⁴⁹ — for 10,000
accounts at a site, one in 10 million.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

PREFIX = "u-"
DIGITS = 12
PATTERN = re.compile(r"^u-[0-9a-f]{12}$")
CACHE_SIZE = 65_536  # accounts remembered; the cache starts afresh when full
_KEY_CHECK = b"printfarm pseudonym key check"


def is_pseudonym(text: str | None) -> bool:
    return bool(text) and PATTERN.match(text) is not None


class Pseudonyms:
    """``of(site, user)``: the pseudonym of one account. Cheap: results are cached.

    The cache holds no raw name (docs/privacy.md: the collector keeps one only while it handles a
    message): it is keyed by a BLAKE2b digest of the name under a key made for this process alone
    and never stored, which costs a third of the HMAC it saves.
    """

    def __init__(self, secret: bytes | str):
        self._key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(self._key) < 16:
            raise ValueError("a pseudonym secret needs at least 16 bytes")
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)
        self._cache_key = os.urandom(32)
        self._cache: dict[bytes, str] = {}

    def __repr__(self) -> str:  # never the key
        return f"Pseudonyms(key_id={self.key_id()!r})"

    def of(self, site: str, user: str) -> str:
        account = f"{site}\0{user}".encode()
        key = hashlib.blake2b(account, key=self._cache_key, digest_size=16).digest()
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()  # one step, safe beside other threads' look-ups
            mac = self._mac.copy()
            mac.update(account)
            found = self._cache[key] = PREFIX + mac.hexdigest()[:DIGITS]
        return found

    def normalise(self, site: str, user: str | None) -> str | None:
        """A pseudonym for what the database holds: kept when it is one already, made from a
        raw name otherwise (points written before pseudonyms, or by another tool)."""
        if not user:
            return None
        return user if is_pseudonym(user) else self.of(site, user)

    def key_id(self) -> str:
        """Identifies the secret without revealing it: the collector stores it, the report
        compares it, so pseudonyms made with another secret are noticed, not silently unmatched."""
        return hmac.new(self._key, _KEY_CHECK, hashlib.sha256).hexdigest()[:DIGITS]
