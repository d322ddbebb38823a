"""Opening the connection to the broker: TCP, and TLS through the standard library's ``ssl``."""

from __future__ import annotations

import socket
import ssl

from common.tls import TLSConfig
from server.config import MqttConfig


def open_socket(cfg: MqttConfig, timeout: float) -> socket.socket:
    """A connected, non-blocking socket (TLS-wrapped when ``cfg.tls`` is set)."""
    sock = socket.create_connection((cfg.host, cfg.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # acks and pings go out at once
        if cfg.tls:
            sock = tls_context(cfg.tls).wrap_socket(sock, server_hostname=cfg.host)  # handshake, within timeout
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_context(tls: TLSConfig) -> ssl.SSLContext:
    """Verify the broker against ``tls.ca`` (the system's CAs without it); present a client
    certificate when one is configured."""
    ctx = ssl.create_default_context(cafile=tls.ca)
    if tls.cert:
        ctx.load_cert_chain(tls.cert, tls.key)
    if tls.insecure:  # the certificate is still verified; only its host name is not
        ctx.check_hostname = False
    return ctx
