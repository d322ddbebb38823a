"""The collector's HTTP API, started for real: answers carry nosniff and a Content-Security-Policy
(the status page's allows exactly its own inline script and style), and a request for a host name
not in ``[http] allowed_hosts`` is refused (DNS rebinding)."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import requests

from devkit.pipeline import RunningCollector, collector_config, write_inventory
from tests.integration.collector_helpers import broker

pytestmark = pytest.mark.integration

ROUTES = ("/", "/api/fleet", "/healthz", "/metrics", "/nowhere")


@pytest.fixture(scope="module")
def collectors(tmp_path_factory):
    """Two collectors on one broker and database: default allowed hosts, and a configured one."""
    from devkit.servers import InfluxDB

    tmp = tmp_path_factory.mktemp("api")
    with InfluxDB(tmp / "influx") as influx:
        mqtt_broker = broker(tmp)
        inventory = write_inventory(tmp / "fleet.toml", {"vp-1": "lab"})
        default = RunningCollector(collector_config(tmp / "a", mqtt_broker, influx, inventory))
        cfg = collector_config(tmp / "b", mqtt_broker, influx, inventory)
        cfg.http.allowed_hosts = ["printfarm.example.org"]
        proxied = RunningCollector(cfg)
        yield default, proxied
        default.stop()
        proxied.stop()
        mqtt_broker.stop()


def get(running, path: str, host: str | None = None) -> requests.Response:
    port = running.collector.api.port
    headers = {"Host": host} if host else {}
    return requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5)


@pytest.mark.parametrize("path", ROUTES)
def test_every_answer_says_nosniff_and_carries_a_policy(collectors, path):
    reply = get(collectors[0], path)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]


def test_the_status_page_policy_allows_exactly_its_own_script_and_style(collectors):
    reply = get(collectors[0], "/")
    policy = reply.headers["Content-Security-Policy"]
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        (block,) = re.findall(rf"<{tag}>(.*?)</{tag}>", reply.text, re.S)
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert re.search(rf"{directive} 'sha256-{re.escape(digest)}';", policy), (directive, policy)
    assert "unsafe-inline" not in policy and "connect-src 'self'" in policy
    assert ' style="' not in reply.text and "onclick" not in reply.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]"])
def test_loopback_names_are_allowed_by_default(collectors, host):
    port = collectors[0].collector.api.port
    assert get(collectors[0], "/api/fleet", f"{host}:{port}").status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost@evil"])
def test_another_host_name_is_refused_as_dns_rebinding_would_send_it(collectors, host):
    reply = get(collectors[0], "/api/fleet", host)
    assert reply.status_code == 403 and "allowed_hosts" in reply.text and "printers" not in reply.text


def test_a_configured_host_name_replaces_the_loopback_names(collectors):
    proxied = collectors[1]
    assert get(proxied, "/api/fleet", "printfarm.example.org").status_code == 200
    assert get(proxied, "/api/fleet", "localhost").status_code == 403
