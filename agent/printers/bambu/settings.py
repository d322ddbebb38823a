"""The ``[[printers]]`` table of a Bambu Lab printer in LAN mode (``type = "bambu"``)."""

from __future__ import annotations

import logging
from pathlib import Path

from agent.printers.base import PrinterSettings
from agent.printers.bambu.tls import parse_fingerprint
from common.configkit import Invalid, Secret, check_range, read_secret

log = logging.getLogger(__name__)

# Models and whether they have a chamber temperature sensor (P1 and A1 report a placeholder, 5).
# H2D, H2S and P2S report the chamber in device.ctc, as X1C firmware 01.09 and later does.
MODELS = {"X1": True, "X1C": True, "X1E": True, "P1P": False, "P1S": False, "A1": False, "A1 MINI": False,
          "H2D": True, "H2S": True, "P2S": True}


class BambuSettings(PrinterSettings, tag="bambu"):
    host: str  # the printer's address on the lab network
    serial: str  # the printer's serial number: its MQTT topics and its certificate's name
    port: int = 8883
    access_code_file: str | None = None  # the LAN access code (printer screen: Settings > LAN)
    access_code_env: str | None = None
    ca_file: str | None = None  # trust: a CA that issued the printer's certificate ...
    fingerprint: str | None = None  # ... and/or the SHA-256 of the printer's own certificate
    insecure_skip_verify: bool = False  # no check at all: must be said, and is logged loudly
    silent_after: float = 30.0  # seconds without a report on an open connection = unreachable
    model: str | None = None  # X1, X1C, X1E, P1P, P1S, A1, A1 mini, H2D, H2S, P2S (optional)
    fetch_3mf: bool = True  # read the job's grams from its 3MF over FTPS (implicit TLS, same trust)
    ftps_port: int = 990

    def __post_init__(self):
        super().__post_init__()
        _check_host(self.host)
        _check_serial(self.serial)
        check_range("port", self.port, 1, 65535)
        check_range("ftps_port", self.ftps_port, 1, 65535)
        check_range("silent_after", self.silent_after, 0.5, 3600)
        self.access_code = Secret(read_secret("access_code", self.access_code_file, self.access_code_env))
        self.pin = _check_trust(self.ca_file, self.fingerprint, self.insecure_skip_verify)
        self.model = _check_model(self.model)

    @property
    def has_chamber_sensor(self) -> bool | None:
        """None when the model is not configured: the report then decides (see report.temps)."""
        return MODELS.get(self.model) if self.model else None

    def build(self):
        from agent.printers.bambu.client import Bambu

        return Bambu(self)


def _check_host(host: str) -> None:
    if not host.strip() or "://" in host or "/" in host:
        raise Invalid("host", f"{host!r} is not a host name or IP address",
                      "give the printer's address only, like '192.168.1.50'")


def _check_serial(serial: str) -> None:
    if not (serial.isascii() and serial.isalnum() and 4 <= len(serial) <= 32):
        raise Invalid("serial", f"{serial!r} is not a printer serial number",
                      "copy it from the printer (Settings > Device), like '00M09A350100123'")


def _check_trust(ca_file: str | None, fingerprint: str | None, insecure: bool) -> bytes | None:
    if insecure and (ca_file or fingerprint):
        raise Invalid("insecure_skip_verify", "is true while ca_file or fingerprint is set",
                      "remove insecure_skip_verify to keep the certificate check")
    if not (ca_file or fingerprint or insecure):
        raise Invalid("ca_file", "nothing to verify the printer's certificate with",
                      "set ca_file (Bambu Lab's CA) or fingerprint (the SHA-256 of the printer's "
                      "certificate); insecure_skip_verify = true turns the check off")
    if ca_file and not Path(ca_file).is_file():
        raise Invalid("ca_file", f"file {ca_file} not found", "give the path of a PEM file")
    if fingerprint is None:
        return None
    pin = parse_fingerprint(fingerprint)
    if pin is None:
        raise Invalid("fingerprint", "is not a SHA-256 fingerprint",
                      "give 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)")
    return pin


def _check_model(model: str | None) -> str | None:
    if model is None:
        return None
    name = " ".join(model.upper().split())
    if name not in MODELS:
        raise Invalid("model", f"{model!r} is not a known Bambu Lab model",
                      "use one of " + ", ".join(m.replace("MINI", "mini") for m in MODELS) + ", or leave it out")
    return name
