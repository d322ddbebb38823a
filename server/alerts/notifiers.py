"""Sending notifications: one small protocol, one implementation per receiver ``type``.

``apprise`` reaches mail, Teams, Slack, Discord, ntfy, Telegram and ~100 more through Apprise
URLs; ``webhook`` POSTs the notification as JSON. Each target (each Apprise URL, each webhook)
sends on its own thread from its own queue, so a receiver that is down delays nothing but
itself: never ingestion, never the other receivers. Failed sends are retried with exponential
backoff, in order, until ``give_up_after``; every outcome is counted in the metrics. A full queue
sheds the oldest notification of the lowest severity it holds, so a flood of warnings never
pushes out a critical alert.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Protocol

from server.metrics import Metrics
from server.alerts.config import RANK, Receiver

log = logging.getLogger(__name__)


class SendError(Exception):
    """A delivery that did not work; the text is safe to log (no URLs, no secrets)."""


class Sender(Protocol):
    name: str

    def send(self, note: dict) -> None:
        """Deliver one notification or raise SendError."""


class WebhookSender:
    def __init__(self, name: str, url: str, headers: dict[str, str], timeout: float):
        self.name, self._url, self._headers, self._timeout = name, url, headers, timeout

    def send(self, note: dict) -> None:
        body = json.dumps(note).encode()
        request = urllib.request.Request(self._url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **self._headers})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as reply:
                reply.read()
        except urllib.error.HTTPError as exc:
            raise SendError(f"HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, resets
            reason = getattr(exc, "reason", exc)
            raise SendError(f"{type(exc).__name__}: {reason}") from None


class AppriseSender:
    """One Apprise URL. Apprise logs through the 'apprise' logger and reports only True/False."""

    _types = {"critical": "failure", "warning": "warning", "info": "info"}

    def __init__(self, name: str, url: str):
        import apprise  # imported late: only collectors with an apprise receiver pay for it

        self.name = name
        self._apprise = apprise.Apprise()
        if not self._apprise.add(url):
            raise ValueError(f"receiver {name}: Apprise does not understand this URL (check its scheme)")

    def send(self, note: dict) -> None:
        kind = "success" if note["kind"] == "resolved" else self._types.get(note["severity"], "info")
        # body_format "text": Apprise keeps the line breaks when a service (mail) renders HTML.
        if not self._apprise.notify(title=note["title"], body=note["text"], notify_type=kind, body_format="text"):
            raise SendError("Apprise reported a failed delivery (see the 'apprise' log)")


def make_senders(name: str, receiver: Receiver) -> list[Sender]:
    urls = [u.reveal() for u in receiver.secret_urls]
    if receiver.type == "webhook":
        return [WebhookSender(name, urls[0], receiver.headers, receiver.timeout)]
    many = len(urls) > 1
    return [AppriseSender(f"{name}[{i}]" if many else name, url) for i, url in enumerate(urls)]


class Delivery:
    """A queue and a thread for one target: sends in order, retries with backoff, never blocks put()."""

    def __init__(self, sender: Sender, retry_min: float = 1.0, retry_max: float = 60.0,
                 give_up_after: float = 86400.0, queue_size: int = 10000,
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None):
        self.sender, self.name = sender, sender.name
        self.metrics = metrics or Metrics()
        self.retry_min, self.retry_max, self.give_up_after = retry_min, retry_max, give_up_after
        self.clock = clock
        self._queue: collections.deque[dict] = collections.deque()
        self._size = queue_size
        self._cond = threading.Condition()
        self._stopping = False
        self._stop_event = threading.Event()  # cuts a backoff wait short on stop()
        self._thread = threading.Thread(target=self._run, name=f"alert-send-{self.name}", daemon=True)
        self.sent = self.failures = self.dropped = 0
        self._shedding = False  # dropping for a full queue: logged once until a send succeeds

    def start(self) -> None:
        self._thread.start()

    def put(self, note: dict) -> None:
        with self._cond:
            if len(self._queue) >= self._size:
                shed = self._least_important(note)
                self._shed(shed)
                if shed is note:
                    return
                self._queue.remove(shed)
            self._queue.append(note)
            self._cond.notify()

    def _least_important(self, note: dict) -> dict:
        """The oldest of the lowest severity among the queue and ``note`` (which comes last)."""
        rank = lambda n: RANK.get(n.get("severity"), 0)  # noqa: E731
        return min((*self._queue, note), key=rank)  # min keeps the first of equals: the oldest

    def _shed(self, note: dict) -> None:
        self.dropped += 1
        self.metrics.inc("alert_notifications_dropped")
        if not self._shedding:
            self._shedding = True
            log.error("receiver %s: queue full (%d): shedding the oldest notifications of the lowest "
                      "severity, starting with %s; logged once until a send succeeds",
                      self.name, self._size, note.get("incident"))

    def pending(self) -> list[dict]:
        with self._cond:
            return list(self._queue)

    def stop(self, timeout: float = 5.0) -> list[dict]:
        """Stop the thread; returns what was not delivered, for the engine to save."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._stop_event.set()
        if self._thread.is_alive() and timeout > 0:
            self._thread.join(timeout)
        return self.pending()

    def _run(self) -> None:
        attempt = 0
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                note = self._queue[0]
            if self.clock() - note["queued_at"] > self.give_up_after:
                self._pop(note)
                self._drop(f"undelivered for more than {self.give_up_after:.0f} s")
                attempt = 0
                continue
            if self._attempt(note, attempt):
                self._pop(note)
                attempt = 0
                continue
            attempt += 1
            delay = min(self.retry_max, self.retry_min * 2 ** (attempt - 1))
            self._stop_event.wait(delay)

    def _attempt(self, note: dict, attempt: int) -> bool:
        try:
            self.sender.send(note)
        except Exception as exc:  # SendError, or a bug in a third-party notifier
            self.failures += 1
            self.metrics.inc("alert_notify_failures")
            if attempt == 0:  # a repeating failure is logged once per notification
                log.warning("receiver %s: could not deliver %s (%s); retrying with backoff",
                            self.name, note["incident"], exc)
            return False
        self.sent += 1
        self._shedding = False
        self.metrics.inc("alert_notifications_sent")
        if attempt:
            log.info("receiver %s: delivered %s after %d retries", self.name, note["incident"], attempt)
        else:
            log.debug("receiver %s: delivered %s", self.name, note["incident"])
        return True

    def _pop(self, note: dict) -> None:
        with self._cond:
            if self._queue and self._queue[0] is note:
                self._queue.popleft()

    def _drop(self, why: str) -> None:
        self.dropped += 1
        self.metrics.inc("alert_notifications_dropped")
        log.error("receiver %s: dropped a notification: %s", self.name, why)
