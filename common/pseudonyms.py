"""Stable pseudonyms for printer-API user names, and keyed labels for masked file names.

A user name is personal data. The agent turns it into ``u-`` + 12 hex digits of
HMAC-SHA-256(secret, site + NUL + user) before it leaves the site (agent/sharing.py); the
collector does the same for the raw names older agents still send (server/ingest.py). Both
import this module, so the same account gives the same pseudonym on either side, in every run,
view and report, as long as the secret stays the same, and nobody without the secret can
compute or reverse one. The site is part of the input because accounts are local to a site (an
OctoPrint user belongs to one OctoPrint): "anna" at two sites is two accounts, and two pseudonyms.

A masked file name (sharing policy ``masked``) is ``f-`` + 12 hex digits of
HMAC-SHA-256(secret, "file" + NUL + site + NUL + name): the same file at the same site keeps its
label, and a customer tag in the name (``[kilsberg-verktyg]``) is kept beside it.

48 bits: two accounts of one site share a pseudonym with odds of about n²/2⁴⁹ — for 10,000
accounts at a site, one in 10 million.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from functools import lru_cache

PREFIX = "u-"
DIGITS = 12
PATTERN = re.compile(r"^u-[0-9a-f]{12}$")
CACHE_SIZE = 65_536  # accounts remembered; the cache starts afresh when full
FILE_PREFIX = "f-"
FILE_LABEL = re.compile(r"^f-[0-9a-f]{12}\b")
_TAG = re.compile(r"\[[A-Za-z0-9][A-Za-z0-9_-]*\]")  # a customer tag (server/attribution.py)
# Only a printable file's own extension shows through (".volvo" in "bracket.volvo" would not).
_EXTENSION = re.compile(r"\.(?:gcode|bgcode|gco|g|3mf|ufp)$", re.I)
_KEY_CHECK = b"printfarm pseudonym key check"


# A cache key for an account that is not the account's name: Python's own hash of the (site, user)
# pair. For str it is SipHash-1-3 under a 128-bit key drawn at random for each process (PEP 456),
# never stored, so the key reveals nothing without that process's memory; and it costs ~0.1 µs
# against ~1.5 µs for a keyed BLAKE2b digest and a string to feed it, on every message from an
# agent older than pseudonyms at the source (bench/organisations_cost.py). 64 bits: two accounts
# among a full cache share a key with odds of about 2^-33, far below the pseudonyms' own 48 bits.
# Where PYTHONHASHSEED fixes the key (or turns it off), the BLAKE2b digest under a key of our own.
_RANDOM_STR_HASH = bool(sys.flags.hash_randomization) and os.environ.get("PYTHONHASHSEED", "random") == "random"


def _hash_key(site: str, user: str) -> int:
    return hash((site, user))


def _remember(cache: dict, key, value: str) -> str:
    if len(cache) >= CACHE_SIZE:
        cache.clear()  # one step, safe beside other threads' look-ups
    cache[key] = value
    return value


def is_pseudonym(text: str | None) -> bool:
    return bool(text) and PATTERN.match(text) is not None


def is_file_label(text: str | None) -> bool:
    """True for a file name an agent masked (what a network view may show of it)."""
    return bool(text) and FILE_LABEL.match(text) is not None


class Pseudonyms:
    """``of(site, user)``: the pseudonym of one account. Cheap: results are cached.

    The caches hold no raw name (docs/privacy.md: a raw name is kept only while a message is
    handled): they are keyed by a digest of the account under a key made for this process alone
    and never stored (``_account_key``).
    """

    def __init__(self, secret: bytes | str):
        self._key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(self._key) < 16:
            raise ValueError("a pseudonym secret needs at least 16 bytes")
        self._mac = hmac.new(self._key, digestmod=hashlib.sha256)
        self._cache_key = os.urandom(32)
        self._cache: dict[object, str] = {}  # of(): the pseudonym of each account
        self._kept: dict[object, str] = {}  # stored(): what is stored for each (site, user) that came
        self._account_key = _hash_key if _RANDOM_STR_HASH else self._digest_key
        self.file_label = lru_cache(maxsize=4096)(self._file_label)

    def __repr__(self) -> str:  # never the key
        return f"Pseudonyms(key_id={self.key_id()!r})"

    def of(self, site: str, user: str) -> str:
        key = self._account_key(site, user)
        found = self._cache.get(key)
        if found is None:
            mac = self._mac.copy()
            mac.update(f"{site}\0{user}".encode())
            found = _remember(self._cache, key, PREFIX + mac.hexdigest()[:DIGITS])
        return found

    def stored(self, site: str, user: str) -> str:
        """What the collector stores for ``user`` of a message: a pseudonym an agent made, as it
        came; a raw name's pseudonym. Once per message: one keyed hash and a look-up."""
        key = self._account_key(site, user)
        found = self._kept.get(key)
        if found is None:
            found = _remember(self._kept, key, user if PATTERN.match(user) else self.of(site, user))
        return found

    def _digest_key(self, site: str, user: str) -> bytes:
        return hashlib.blake2b(f"{site}\0{user}".encode(), key=self._cache_key, digest_size=16).digest()

    def _file_label(self, site: str, name: str) -> str:
        """``f-…`` for the name, its customer tags and its extension kept: ``f-3f9a2c1b7e0d
        [kilsberg-verktyg].gcode``. Only the tags and extension of the name show through."""
        digest = hmac.new(self._key, f"file\0{site}\0{name}".encode(), hashlib.sha256).hexdigest()
        tags = "".join(f" {tag}" for tag in dict.fromkeys(_TAG.findall(name)))
        ext = _EXTENSION.search(name)
        return FILE_PREFIX + digest[:DIGITS] + tags + (ext.group(0).lower() if ext else "")

    def normalise(self, site: str, user: str | None) -> str | None:
        """A pseudonym for what the database holds or a message carries: kept when it is one
        already (an agent made it), made from a raw name otherwise (points written before
        pseudonyms, by another tool, or sent by an agent older than pseudonyms at the source)."""
        return self.stored(site, user) if user else None

    def key_id(self) -> str:
        """Identifies the secret without revealing it: the collector stores it, the report
        compares it, so pseudonyms made with another secret are noticed, not silently unmatched."""
        return hmac.new(self._key, _KEY_CHECK, hashlib.sha256).hexdigest()[:DIGITS]
