"""TLS settings for an MQTT connection: the agent's uplink and the collector's subscription."""

from __future__ import annotations

from pathlib import Path

from common.configkit import Invalid, Section


class TLSConfig(Section):
    ca: str | None = None  # CA bundle that signed the broker's certificate
    cert: str | None = None  # client certificate, for brokers that require one
    key: str | None = None
    insecure: bool = False  # skip hostname check (test brokers only)

    def __post_init__(self):
        for name in ("ca", "cert", "key"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise Invalid(name, f"file {path} not found", "give the path of an existing PEM file")
        if bool(self.cert) != bool(self.key):
            raise Invalid("cert", "cert and key must be given together", "set both cert and key, or neither")
