"""Driving a simulated PrusaLink printer the way a person and PrusaSlicer would.

The calls under ``/api/`` are PrusaLink's own (upload-and-print, pause, resume, cancel: v1, or
the legacy ones); ``/sim/`` calls stand for what happens at the printer (a fault, a question
on its screen). Auth is ``requests``' own digest implementation — independent of the agent's,
so the stand-in is checked against a second client.
"""

from __future__ import annotations

import requests
from requests.auth import HTTPDigestAuth

from devkit.sim.faces.prusalink_auth import USER


class PrusaLinkRemote:
    def __init__(self, url: str, password: str, legacy: bool = False, timeout: float = 5.0):
        self.url, self.legacy, self.timeout = url.rstrip("/"), legacy, timeout
        self.session = requests.Session()
        self.session.auth = HTTPDigestAuth(USER, password)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)

    def _expect(self, reply: requests.Response, *codes: int) -> requests.Response:
        if reply.status_code not in codes:
            raise AssertionError(f"{reply.request.method} {reply.url}: HTTP {reply.status_code} {reply.text[:200]}")
        return reply

    def status(self) -> dict:
        return self._expect(self.api("GET", "/api/v1/status"), 200).json()

    def job_id(self) -> int:
        return self.status()["job"]["id"]

    def print_file(self, name: str, gcode: bytes) -> None:
        if self.legacy:
            files = {"file": (name, gcode, "application/octet-stream")}
            self._expect(self.api("POST", "/api/files/local", files=files, data={"path": "", "select": "true"}), 201)
            self._expect(self.api("POST", "/api/job", json={"command": "start"}), 204)
            return
        headers = {"Print-After-Upload": "?1", "Content-Type": "application/octet-stream"}
        self._expect(self.api("PUT", f"/api/v1/files/usb/{name}", data=gcode, headers=headers), 201)

    def cancel(self) -> None:
        if self.legacy:
            self._expect(self.api("POST", "/api/job", json={"command": "cancel"}), 204)
        else:
            self._expect(self.api("DELETE", f"/api/v1/job/{self.job_id()}"), 204)

    def pause(self, action: str = "pause") -> None:
        if self.legacy:
            self._expect(self.api("POST", "/api/job", json={"command": "pause", "action": action}), 204)
        else:
            self._expect(self.api("PUT", f"/api/v1/job/{self.job_id()}/{action}"), 204)

    def at_printer(self, action: str, **body) -> None:
        """fault(text=…), attention, busy(on=…), ready, clear, power(on=…): what happens at the printer."""
        self._expect(requests.post(f"{self.url}/sim/{action}", json=body, timeout=self.timeout), 204)

    def close(self) -> None:
        self.session.close()


def sliced(gcode: str, grams: list[float], mm: list[float], types: list[str]) -> bytes:
    """``gcode`` with the summary PrusaSlicer writes at its end, one value per tool (an MMU or
    XL print lists every tool, 0.00 for those it does not use)."""
    joined = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    footer = [f"; filament used [mm] = {joined(mm)}", f"; filament used [g] = {joined(grams)}",
              f"; total filament used [g] = {sum(grams):.2f}", f"; filament_type = {';'.join(types)}",
              "; nozzle_diameter = " + ",".join("0.4" for _ in types)]
    return (gcode + "\n".join(footer) + "\n").encode()
