"""One Mosquitto standing in for the MQTT brokers inside Bambu Lab printers.

A real printer in LAN mode runs its own broker: TLS on 8883, a certificate issued by Bambu Lab's
CA with the printer's serial as its name, one user ``bblp`` whose password is the LAN access
code, and only that printer's topics ``device/<serial>/...``. Here one Mosquitto process plays
any number of printers, each on its own TLS listener (Mosquitto 2.0 has no SNI-based certificate
choice, so one port per printer, as on a real network one address per printer) with its own
certificate, access code and ACL (``per_listener_settings``). A test CA issues the certificates.

One more listener, plain and loopback-only, is where the fake printers (devkit.sim.faces.bambu)
publish their reports, as a printer's firmware does inside the printer.

``ftps(serial)`` gives the printer's storage as well: implicit FTPS on real TLS with the same
certificate and access code (devkit.servers.bambu_ftps), on a free port instead of 990.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devkit.servers.bambu_ftps import BambuFTPS
from devkit.servers.mosquitto import COMMON_CONFIG, Mosquitto
from devkit.pki import Issued, issue, make_ca
from devkit.servers.ports import free_ports
from devkit.servers.process import find_binary

USER = "bblp"

HEAD = """\
# written by devkit.servers.bambu
per_listener_settings true
persistence false
""" + COMMON_CONFIG + """
# the fake printers' side: plain, loopback only
listener {port} 127.0.0.1
allow_anonymous true
"""

PRINTER_LISTENER = """
# printer {serial}
listener {tls_port} 127.0.0.1
certfile {dir}/{serial}.crt
keyfile {dir}/{serial}.key
allow_anonymous false
password_file {dir}/{serial}.passwd
acl_file {dir}/{serial}.acl
"""


@dataclass
class BambuEndpoint:
    """What an agent needs to watch one simulated printer."""

    serial: str
    port: int
    access_code: str
    certificate: Issued


class BambuBroker(Mosquitto):
    """``serials``: the printers to play. ``ca`` and ``endpoints[serial]`` tell a client whom to trust."""

    name = "mosquitto-bambu"

    def __init__(self, tmpdir, serials: list[str], ca_name: str = "BBL test CA", port: int | None = None):
        super().__init__(tmpdir, port=port)
        self.ca = make_ca(ca_name)
        self.ca_path = self.ca.write(self.dir / "ca.crt")
        ports = free_ports(len(serials), besides=(self.port,))
        self.endpoints = {s: BambuEndpoint(s, port, secrets.token_hex(4), issue(self.ca, s))
                          for s, port in zip(serials, ports)}
        # Mosquitto's own lines (a port it cannot bind among them) go to its log_dest file.
        self.log_path = self.dir / "mosquitto.log"
        self._passwd = find_binary("mosquitto_passwd", "apt-get install -y mosquitto", ("/usr/bin/mosquitto_passwd",))
        for endpoint in self.endpoints.values():
            self._write_printer_files(endpoint)
        self._storage: dict[str, BambuFTPS] = {}

    def ftps(self, serial: str) -> BambuFTPS:
        """The printer's FTPS (its certificate, ``bblp`` and its access code), started on first use
        and stopped with the broker; put files in ``.files`` ("/name.gcode.3mf") or in its ``.root``."""
        if serial not in self._storage:
            e = self.endpoints[serial]
            root = self.dir / "storage" / serial  # where the simulator puts its jobs' 3MFs
            root.mkdir(parents=True, exist_ok=True)
            self._storage[serial] = BambuFTPS(self.dir / f"{serial}.crt", self.dir / f"{serial}.key",
                                              e.access_code, root).__enter__()
        return self._storage[serial]

    def stop(self) -> None:
        """The broker and the printers' FTPS (which a restart of the broker keeps)."""
        for storage in self._storage.values():
            storage.__exit__(None, None, None)
        self._storage.clear()
        super().stop()

    def restart(self) -> "BambuBroker":
        super().stop()  # the broker only: the printers' storage stays where agents know it
        return self.start()

    def access_code_file(self, serial: str) -> Path:
        path = self.dir / f"{serial}.code"
        path.write_text(self.endpoints[serial].access_code + "\n")
        return path

    def _write_printer_files(self, e: BambuEndpoint) -> None:
        e.certificate.write(self.dir / f"{e.serial}.crt", self.dir / f"{e.serial}.key")
        passwd = self.dir / f"{e.serial}.passwd"
        # The code on stdin (twice, as it asks), not in argv where any process list shows it.
        subprocess.run([self._passwd, "-c", str(passwd), USER], input=f"{e.access_code}\n{e.access_code}\n",
                       text=True, check=True, capture_output=True)
        passwd.chmod(0o600)
        # A printer's broker carries that printer's topics only.
        (self.dir / f"{e.serial}.acl").write_text(f"user {USER}\ntopic readwrite device/{e.serial}/#\n")

    def _pick_new_ports(self) -> None:
        super()._pick_new_ports()
        for endpoint, port in zip(self.endpoints.values(), free_ports(len(self.endpoints), besides=(self.port,))):
            endpoint.port = port

    def _prepare(self) -> None:
        self.config_text = HEAD + "".join(
            PRINTER_LISTENER.format(serial=e.serial, tls_port=e.port, dir="{dir}") for e in self.endpoints.values())
        super()._prepare()
