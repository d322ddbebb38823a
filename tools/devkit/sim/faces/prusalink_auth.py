"""The printer's side of PrusaLink's digest auth, as Buddy firmware does it.

``WWW-Authenticate: Digest realm="Printer API", nonce="<8 hex random><8 hex seconds>", stale=…``
without ``qop``; user ``maker``; a nonce is good for any number of requests while younger than
a few seconds (5 on the firmware); an expired nonce answered with the right password gets
``stale=true`` (retry with the new one, no need to ask a person), a wrong answer ``stale=false``.
Firmware before digest auth took an ``X-Api-Key`` header instead.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Callable

from agent.printers.digest import parse_challenge

REALM = "Printer API"
USER = "maker"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestGate:
    """Decides whether a request may pass; counts the challenges it sent (tests read them)."""

    def __init__(self, password: str, nonce_ttl: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.password, self.nonce_ttl, self._clock = password, nonce_ttl, clock
        self._random = os.urandom(4).hex()  # new on every boot of the printer
        self.challenges = 0

    def check(self, method: str, uri: str, authorization: str | None) -> str | None:
        """None when the request may pass, else the ``WWW-Authenticate`` value for a 401."""
        params = parse_challenge(authorization) or {}
        nonce = params.get("nonce", "")
        right = self._answer_is_right(method, uri, params)
        if right and self._fresh(nonce):
            return None
        self.challenges += 1
        stale = "true" if right else "false"  # right password, old nonce: retry without asking anyone
        return f'Digest realm="{REALM}", nonce="{self._new_nonce()}", stale={stale}'

    def _answer_is_right(self, method: str, uri: str, params: dict) -> bool:
        if params.get("username") != USER or params.get("uri") != uri or "nonce" not in params:
            return False
        ha1 = _md5(f"{USER}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        return params.get("response") == _md5(f"{ha1}:{params['nonce']}:{ha2}")

    def _fresh(self, nonce: str) -> bool:
        if len(nonce) != 16 or nonce[:8] != self._random:
            return False
        try:
            issued = int(nonce[8:], 16)
        except ValueError:
            return False
        return 0 <= int(self._clock()) - issued < self.nonce_ttl

    def _new_nonce(self) -> str:
        return f"{self._random}{int(self._clock()) & 0xFFFFFFFF:08x}"
