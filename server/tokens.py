"""HTTP API tokens: who holds one, stored as the SHA-256 of the token, never the token itself.

The tokens file (``[http] tokens_file``, default ``<state_dir>/api-tokens``) has one line per
token, written by ``printfarm-server token-create`` and ``token-revoke`` (server/tokens_cli.py)::

    # scope <TAB> sha256 of the token <TAB> created (UTC) <TAB> label
    orebro-universitet	3f1c…(64 hex)	2026-12-07T20:50:00Z	lab screen
    *network	ab12…	2026-12-07T21:00:00Z	region office

A scope is an organisation's ID (server/tenancy.py) or ``*network``. The collector re-reads the
file when it changes (its size, time or inode), so a revoked token stops working at its next
request, without a restart. A presented token is hashed and compared with every stored hash by
``hmac.compare_digest``, so the answer takes as long whichever hash (if any) matches.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

NETWORK = "*network"  # not an organisation ID: those are slugs of letters, digits and '-'
DEFAULT_NAME = "api-tokens"
PREFIX = "pft_"  # recognisable in a leaked paste or log
HEADER = "# scope\tsha256 of the token\tcreated (UTC)\tlabel (printfarm-server token-create)\n"


@dataclass(frozen=True)
class Entry:
    scope: str
    digest: str  # hex SHA-256 of the token
    created: str = ""
    label: str = ""

    @property
    def id(self) -> str:
        """What list and revoke call it: the start of its hash, which says nothing of the token."""
        return self.digest[:10]


def path_for(cfg) -> Path:
    """The tokens file of a ServerConfig: ``[http] tokens_file``, or one in the state folder."""
    return Path(cfg.http.tokens_file or Path(cfg.state_dir) / DEFAULT_NAME)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse(text: str, source: str = "") -> list[Entry]:
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2 or len(parts[1]) != 64 or any(c not in "0123456789abcdef" for c in parts[1]):
            log.warning("%s line %d is not 'scope<TAB>sha256[...]': ignored", source, n)
            continue
        entries.append(Entry(parts[0].strip(), parts[1], *[p.strip() for p in parts[2:4]]))
    return entries


class TokenFile:
    """The tokens file as the API reads it: ``scope(token)`` -> the token's scope, or None."""

    def __init__(self, path: str | Path, min_check_interval: float = 0.0):
        self.path = Path(path)
        self.min_check_interval = min_check_interval
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._entries: list[Entry] = []
        self._checked = float("-inf")

    def scope(self, token: str | None) -> str | None:
        if not token:
            return None
        wanted = digest(token).encode()
        found = None
        for entry in self.entries():  # no early exit: every stored hash is compared
            if hmac.compare_digest(entry.digest.encode(), wanted):
                found = entry.scope
        return found

    def entries(self) -> list[Entry]:
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.min_check_interval:
                self._checked = now
                self._reload_if_changed()
            return self._entries

    def _reload_if_changed(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._entries = None, []
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            self._entries = parse(self.path.read_text(), str(self.path))
        except OSError as exc:  # unreadable now: keep no tokens rather than old ones
            log.error("cannot read the API tokens file %s (%s): every token is refused", self.path, exc.strerror)
            self._entries = []
        self._stamp = stamp
        log.info("API tokens: %d from %s", len(self._entries), self.path)


def issue(path: str | Path, scope: str, label: str = "") -> tuple[str, Entry]:
    """A new token for ``scope``, its hash added to the file; the token itself is returned only."""
    token = PREFIX + secrets.token_urlsafe(32)
    entry = Entry(scope, digest(token), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  " ".join(label.split()))
    _write(Path(path), read(path) + [entry])
    return token, entry


def revoke(path: str | Path, token_id: str | None = None, scope: str | None = None) -> list[Entry]:
    """Remove the token whose id starts the hash, or every token of ``scope``; returns those removed."""
    entries = read(path)
    gone = [e for e in entries if (token_id and e.digest.startswith(token_id)) or (scope and e.scope == scope)]
    if gone:
        _write(Path(path), [e for e in entries if e not in gone])
    return gone


def read(path: str | Path) -> list[Entry]:
    try:
        return parse(Path(path).read_text(), str(path))
    except FileNotFoundError:
        return []


def _write(path: Path, entries: list[Entry]) -> None:
    """Whole and at once (a reader sees the old file or the new one), readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(HEADER + "".join(f"{e.scope}\t{e.digest}\t{e.created}\t{e.label}\n" for e in entries))
    os.replace(tmp, path)
