"""Notifiers: a real loopback webhook receiver, retries with backoff, a put() that never blocks."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from server.metrics import Metrics
from server.alerts.notifiers import AppriseSender, Delivery, SendError, WebhookSender
from devkit.pipeline import wait_for
from tests.unit.alert_helpers import Recorder

NOTE = {"kind": "firing", "incident": "print_failed/vp-1/1", "severity": "critical", "title": "t", "text": "x",
        "queued_at": 0.0}


class Hook:
    """A webhook receiver on a free loopback port that answers ``status`` (and records bodies)."""

    def __init__(self, status=204):
        self.status, self.bodies = status, []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.status < 300:
                    hook.bodies.append((json.loads(body), dict(self.headers)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    server = Hook()
    yield server
    server.close()


def test_the_webhook_posts_the_notification_as_json_with_its_headers(hook):
    WebhookSender("h", hook.url, {"Authorization": "Bearer s3cret"}, 2).send(NOTE)
    body, headers = hook.bodies[0]
    assert body == NOTE and headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer s3cret"


def test_a_webhook_error_status_is_a_send_error_without_the_url(hook):
    hook.status = 500
    with pytest.raises(SendError) as info:
        WebhookSender("h", hook.url + "?token=s3cret", {}, 2).send(NOTE)
    assert "500" in str(info.value) and "s3cret" not in str(info.value)


def test_a_receiver_that_is_down_gets_the_notification_once_it_is_back(hook):
    hook.status = 503
    metrics = Metrics()
    delivery = Delivery(WebhookSender("h", hook.url, {}, 2), retry_min=0.05, retry_max=0.2, clock=lambda: 0.0,
                        metrics=metrics)
    delivery.start()
    try:
        delivery.put(NOTE)
        wait_for(lambda: delivery.failures >= 3, 5, "a few failed attempts")
        hook.status = 204
        wait_for(lambda: hook.bodies, 5, "delivery after the receiver came back")
    finally:
        delivery.stop()
    assert len(hook.bodies) == 1 and delivery.pending() == []
    assert metrics.counters["alert_notify_failures"] >= 3 and metrics.counters["alert_notifications_sent"] == 1


def test_put_never_blocks_and_a_full_queue_drops_the_oldest():
    recorder = Recorder("r")
    recorder.fail = True
    delivery = Delivery(recorder, queue_size=3)  # not started: nothing is taken off the queue
    began = time.perf_counter()
    for i in range(10):
        delivery.put({**NOTE, "incident": str(i)})
    assert time.perf_counter() - began < 0.05
    assert [n["incident"] for n in delivery.pending()] == ["7", "8", "9"] and delivery.dropped == 7


def test_a_notification_older_than_give_up_after_is_dropped():
    now = [100.0]
    recorder = Recorder("r")
    recorder.fail = True
    delivery = Delivery(recorder, retry_min=0.01, retry_max=0.01, give_up_after=50, clock=lambda: now[0])
    delivery.start()
    try:
        delivery.put({**NOTE, "queued_at": 100.0})
        wait_for(lambda: delivery.failures >= 2, 5, "retries")
        now[0] = 151.0
        wait_for(lambda: delivery.dropped == 1, 5, "the drop")
    finally:
        delivery.stop()
    assert delivery.pending() == []


def test_an_unknown_apprise_scheme_is_refused_at_start():
    with pytest.raises(ValueError, match="does not understand"):
        AppriseSender("x", "nosuchscheme://host/path")


def test_stop_does_not_wait_for_a_hung_receiver_and_returns_what_was_not_delivered():
    release, sending = threading.Event(), threading.Event()

    class Hung:
        name = "hung"

        def send(self, note):
            sending.set()
            release.wait(10)

    note = {**NOTE, "queued_at": time.time()}
    delivery = Delivery(Hung())
    delivery.start()
    delivery.put(note)
    assert sending.wait(5), "the send never began"
    began = time.perf_counter()
    pending = delivery.stop(0.2)
    assert time.perf_counter() - began < 0.5 and pending == [note]
    release.set()
