"""A thin PrusaLink HTTP client on ``requests``: one keep-alive session (http_bounds: a total
deadline per request and a cap on the reply), digest auth that answers the firmware's 401 challenge once and then reuses the nonce
(or the ``X-Api-Key`` header of firmware older than digest auth)."""

from __future__ import annotations

from functools import partial
from typing import Callable
from urllib.parse import urlparse

import requests

from agent.printers.digest import DigestAuth
from agent.printers.http_bounds import BoundedSession
from agent.printers.limits import DEFAULT, Limits


class AuthRejected(Exception):
    """The printer refused our credentials (401/403 after answering its challenge)."""


class HTTPStatus(Exception):
    def __init__(self, status: int, path: str):
        super().__init__(f"HTTP {status} from {path}")
        self.status, self.path = status, path


class PrusaLinkHTTP:
    def __init__(self, url: str, timeout: float, digest: DigestAuth | None = None, api_key: str | None = None,
                 session_factory: Callable[[], requests.Session] | None = None, limits: Limits = DEFAULT):
        self.url = url.rstrip("/")
        self._prefix = urlparse(self.url).path  # behind a reverse proxy the digest URI has it too
        self._timeout, self._digest, self._api_key = timeout, digest, api_key
        self._session_factory = session_factory or partial(BoundedSession, timeout, limits)
        self._session: requests.Session | None = None

    @property
    def uses_digest(self) -> bool:
        return self._digest is not None

    def get(self, path: str) -> dict | None:
        """GET ``path``: the JSON object of a 200, None for a 204. Anything else raises."""
        reply = self._request("GET", path)
        if reply.status_code == 401 and self._digest and self._digest.learn(reply.headers.get("WWW-Authenticate")):
            reply = self._request("GET", path)  # answer the challenge once
        if reply.status_code in (401, 403):
            raise AuthRejected(reply.status_code)
        if reply.status_code == 204:
            return None
        if reply.status_code != 200:
            raise HTTPStatus(reply.status_code, path)
        body = reply.json()
        if not isinstance(body, dict):
            raise ValueError(f"{path} did not answer a JSON object")
        return body

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _request(self, method: str, path: str) -> requests.Response:
        if self._session is None:
            self._session = self._session_factory()
        headers = {"Accept": "application/json"}
        if self._api_key is not None:
            headers["X-Api-Key"] = self._api_key
        answer = self._digest.header(method, self._prefix + path) if self._digest else None
        if answer:
            headers["Authorization"] = answer
        return self._session.request(method, self.url + path, headers=headers, timeout=self._timeout,
                                     allow_redirects=False)
