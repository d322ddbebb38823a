"""The agent's MQTT session: last-will, reconnect with backoff, TLS, credentials.

Everything published goes through ``send``. While the broker is away messages wait
in the outbox and are replayed in order, with their original timestamps inside.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent import protocol
from agent.config import BrokerConfig
from agent.outbox import MemoryOutbox, Outbox

log = logging.getLogger(__name__)

QOS = 1


class Publisher:
    def __init__(
        self,
        agent_id: str,
        broker: BrokerConfig,
        outbox: Outbox | None = None,
        printers: list[str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.agent_id = agent_id
        self.broker = broker
        self.outbox = outbox or MemoryOutbox()
        self.printers = printers or []
        self.clock = clock
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._retained: dict[str, bytes] = {}  # last status per topic, re-sent on reconnect
        self._last_error: str | None = None
        self.client = self._make_client()

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive)
        self.client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._connected.is_set():
            info = self.client.publish(
                protocol.agent_topic(self.agent_id), self._agent_payload("offline"), qos=QOS, retain=True
            )
            info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.outbox.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- publishing --------------------------------------------------------

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        with self._lock:
            if retain:
                self._retained[topic] = payload
            if self._connected.is_set() and not self.outbox.pending():
                if self._publish(topic, payload, retain):
                    return
            self.outbox.put(topic, payload, retain)

    def _publish(self, topic: str, payload: bytes, retain: bool) -> bool:
        info = self.client.publish(topic, payload, qos=QOS, retain=retain)
        # paho returns (not raises) MQTT_ERR_QUEUE_SIZE / NO_CONN: check it.
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _replay(self) -> None:
        """Hand queued messages to the broker, oldest first, stopping if it goes away."""
        with self._lock:
            for item_id, topic, payload, retain in self.outbox.peek_batch(500):
                if not self._connected.is_set() or not self._publish(topic, payload, retain):
                    return
                self.outbox.remove_upto(item_id)

    def flush_outbox(self) -> None:
        while self._connected.is_set() and self.outbox.pending():
            before = self.outbox.pending()
            self._replay()
            if self.outbox.pending() >= before:
                return

    # --- paho callbacks ----------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"printfarm-agent-{self.agent_id}",
            protocol=mqtt.MQTTv311,
        )
        client.will_set(protocol.agent_topic(self.agent_id), self._agent_payload("offline"), qos=QOS, retain=True)
        client.reconnect_delay_set(self.broker.reconnect_min, self.broker.reconnect_max)
        if self.broker.username:
            password = self.broker.password.reveal() if self.broker.password else None
            client.username_pw_set(self.broker.username, password)
        if self.broker.tls:
            _configure_tls(client, self.broker.tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._log_once(f"broker refused the connection: {reason_code}")
            return
        self._log_once(None)
        log.info("connected to broker %s:%d", self.broker.host, self.broker.port)
        client.publish(protocol.agent_topic(self.agent_id), self._agent_payload("online"), qos=QOS, retain=True)
        self._connected.set()
        # Runs on paho's thread; replay from a worker so the network loop keeps turning.
        threading.Thread(target=self._after_connect, name="outbox-replay", daemon=True).start()

    def _after_connect(self) -> None:
        self.flush_outbox()
        with self._lock:
            for topic, payload in self._retained.items():
                if self._connected.is_set():
                    self._publish(topic, payload, True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            log.warning("lost the broker (%s); queueing in the outbox", reason_code)

    def _log_once(self, problem: str | None) -> None:
        if problem and problem != self._last_error:
            log.error("%s; retrying with backoff", problem)
        self._last_error = problem

    def _agent_payload(self, state: str) -> bytes:
        return protocol.encode(protocol.AgentStatus(
            v=protocol.SCHEMA_VERSION, ts=int(self.clock() * 1000), agent=self.agent_id, state=state,
            dropped=self.outbox.dropped_total(), printers=self.printers,
        ))


def _configure_tls(client: mqtt.Client, tls) -> None:
    client.tls_set(
        ca_certs=tls.ca, certfile=tls.cert, keyfile=tls.key,
        cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    if tls.insecure:
        client.tls_insecure_set(True)
