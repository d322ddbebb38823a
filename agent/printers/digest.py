"""HTTP digest authentication as PrusaLink speaks it, without I/O.

Prusa's Buddy firmware (MK4, MK3.9, Core One, XL, MINI) sends
``WWW-Authenticate: Digest realm="Printer API", nonce="…", stale=false`` — no ``qop``, so
the answer is RFC 2069's ``MD5(HA1:nonce:HA2)``. Its nonce is valid for a few seconds and
may be used any number of times while valid; an expired one gets ``stale=true``. The MK3's
Pi add-on offers ``qop="auth"`` (RFC 2617: nonce count and client nonce); both are handled.

``DigestAuth`` keeps the last challenge, so every request carries an answer at once (the
nonce is reused, no extra round trip); ``learn`` takes a new challenge from a 401 and says
whether a retry can succeed.
"""

from __future__ import annotations

import hashlib
import os
import re

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str | None) -> dict[str, str] | None:
    """The parameters of a ``Digest`` challenge, or None if the header is not one."""
    if not header or not header.lstrip().lower().startswith("digest "):
        return None
    text = header.lstrip()[len("digest "):]
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(text)}
    return params if "nonce" in params and "realm" in params else None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestAuth:
    def __init__(self, username: str, password: str, cnonce=lambda: os.urandom(8).hex()):
        self._username, self._password, self._cnonce = username, password, cnonce
        self._challenge: dict[str, str] | None = None
        self._count = 0

    def learn(self, header: str | None) -> bool:
        """Take the challenge of a 401. True when answering it may succeed: a first
        challenge, a stale nonce, or a new nonce; False when our answer to this very
        nonce was already refused (wrong user or password)."""
        challenge = parse_challenge(header)
        if challenge is None:
            return False
        old, self._challenge, self._count = self._challenge, challenge, 0
        if old is None or challenge.get("stale", "").lower() == "true":
            return True
        return challenge["nonce"] != old["nonce"]

    def header(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` value for a request, or None before any challenge."""
        ch = self._challenge
        if ch is None:
            return None
        ha1 = _md5(f"{self._username}:{ch['realm']}:{self._password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = {"username": self._username, "realm": ch["realm"], "nonce": ch["nonce"], "uri": uri}
        if "auth" in [q.strip() for q in ch.get("qop", "").split(",")]:
            self._count += 1
            nc, cnonce = f"{self._count:08x}", self._cnonce()
            fields["response"] = _md5(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            extra = f", qop=auth, nc={nc}, cnonce=\"{cnonce}\""
        else:
            fields["response"] = _md5(f"{ha1}:{ch['nonce']}:{ha2}")
            extra = ""
        if "opaque" in ch:
            fields["opaque"] = ch["opaque"]
        quoted = ", ".join(f'{k}="{v}"' for k, v in fields.items())
        return f"Digest {quoted}{extra}"
