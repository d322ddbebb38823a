"""A private Mosquitto 2.0 broker (Debian package ``mosquitto``)."""

from __future__ import annotations

import os
import pwd
import socket

from common.protocol import MAX_PACKET_BYTES
from devkit.servers.process import Server, find_binary

# Logging and the user to run as, for every config the harness writes.
COMMON_CONFIG = """\
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
# Started as root, mosquitto switches to user "mosquitto", who cannot write our temp dir.
user {user}
"""

MOSQUITTO_CONFIG = f"""\
# written by devkit.servers
listener {{port}} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {{dir}}/
# Debian's default of 1000 queued messages per client silently drops a backlog.
max_queued_messages 0
max_queued_bytes 0
# As shipped: a client sending a packet over the protocol's cap is disconnected, its packet dropped.
max_packet_size {MAX_PACKET_BYTES}
""" + COMMON_CONFIG


def mqtt_connack(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a raw MQTT 3.1.1 CONNECT and report whether a CONNACK came back.

    Any CONNACK counts, including 'not authorised': the broker answers, which is all a
    readiness check may claim (configs with ACLs or passwords answer that way).
    """
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(connect)
        reply = sock.recv(4)
        if reply[:1] == b"\x20":
            sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean goodbye
            return True
    return False


class Mosquitto(Server):
    """A private mosquitto broker.

    `config_text` replaces the whole config (TLS/ACL tests); `{port}`, `{dir}` and `{user}` in it
    (and in `extra_conf`, which is appended either way) are filled in. A config whose listener
    does not speak plain MQTT needs a subclass that overrides `_answers`.
    Mosquitto writes its persistence file on a clean stop (and every `autosave_interval`, default
    30 min), so `kill()` loses queued messages that `stop()` keeps.
    """

    name = "mosquitto"
    start_timeout = 10.0

    def __init__(self, tmpdir, port: int | None = None, extra_conf: str = "",
                 config_text: str | None = None) -> None:
        super().__init__(tmpdir, port)
        self.extra_conf = extra_conf
        self.config_text = config_text
        self.config_path = self.dir / "mosquitto.conf"
        self.binary = find_binary("mosquitto", "apt-get install -y mosquitto",
                                   ("/usr/sbin/mosquitto",))

    def _prepare(self) -> None:
        text = MOSQUITTO_CONFIG if self.config_text is None else self.config_text
        text = text + "\n" + self.extra_conf + "\n"
        # str.replace, not str.format: mosquitto configs may contain braces of their own.
        for key, value in (("{port}", self.port), ("{dir}", self.dir),
                           ("{user}", pwd.getpwuid(os.getuid()).pw_name)):
            text = text.replace(key, str(value))
        self.config_path.write_text(text)

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _answers(self) -> bool:
        return mqtt_connack(self.host, self.port)

    pause = Server.sigstop
    resume = Server.sigcont


