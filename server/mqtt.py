"""The collector's MQTT session: persistent (clean start off), QoS 1, optionally shared."""

from __future__ import annotations

import logging
import ssl
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent import protocol
from server.config import MqttConfig

log = logging.getLogger(__name__)


def subscriptions(cfg: MqttConfig) -> list[str]:
    if cfg.share_group:
        return [f"$share/{cfg.share_group}/{topic}" for topic in protocol.SUBSCRIPTIONS]
    return list(protocol.SUBSCRIPTIONS)


class Subscriber:
    def __init__(self, cfg: MqttConfig, handle: Callable[[str, bytes], object]):
        self.cfg = cfg
        self.handle = handle
        self.connected = False
        self._last_problem: str | None = None
        # Shared subscriptions need MQTT 5 on some brokers; Mosquitto 2 takes them on 3.1.1 too.
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
            clean_session=False, protocol=mqtt.MQTTv311,
        )
        self.client.reconnect_delay_set(1, 30)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password.reveal() if cfg.password else None)
        if cfg.tls:
            self.client.tls_set(ca_certs=cfg.tls.ca, certfile=cfg.tls.cert, keyfile=cfg.tls.key,
                                cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def connect(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)

    def loop_forever(self) -> None:
        self.client.loop_forever(retry_first_connection=True)

    def disconnect(self) -> None:
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._note(f"broker refused the connection: {reason_code}")
            return
        self._note(None)
        self.connected = True
        log.info("collector connected to %s:%d (session present: %s)", self.cfg.host, self.cfg.port,
                 flags.session_present)
        client.subscribe([(topic, 1) for topic in subscriptions(self.cfg)])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if self.connected:
            log.warning("collector lost the broker: %s", reason_code)
        self.connected = False

    def _on_message(self, client, userdata, message):
        self.handle(message.topic, message.payload)

    def _note(self, problem: str | None) -> None:
        if problem and problem != self._last_problem:
            log.error("%s; retrying", problem)
        self._last_problem = problem
