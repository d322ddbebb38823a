"""The simulator's HTTP side: one aiohttp application listening on one loopback port per printer."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from devkit.sim.clock import SimClock
from devkit.sim.faces import HTTP_FACES
from devkit.sim.faces.bambu import BambuFleet, BambuSetup
from devkit.sim.model import SimPrinter
from devkit.sim.site import SiteSchedule, random_outages

log = logging.getLogger(__name__)


@dataclass
class PrinterSpec:
    id: str
    site: str = "sim"
    model: str = ""
    port: int = 0  # 0 = a free port picked by the kernel
    api: str = "octoprint"  # which printer API this printer speaks (a key of HTTP_FACES, or "bambu")
    firmware: str = ""  # a face may speak an older firmware's API ("legacy": PrusaLink before v1)


def plan_sites(site_ids: list[str], seed: int, start: float, outages_per_day: float = 0.3,
               days: float = 30) -> dict[str, SiteSchedule]:
    """Opening hours and network outages for each site, drawn from the seed."""
    schedules = {}
    for site in sorted(site_ids):
        rng = random.Random(f"{seed}:site:{site}")
        if rng.random() < 0.2:
            sched = SiteSchedule(site, 0, 24)  # a print farm: never switched off
        else:
            sched = SiteSchedule(site, rng.choice((6, 7, 8)), rng.choice((18, 20, 21, 22)),
                                 weekdays_only=rng.random() < 0.5)
        sched.outages = random_outages(rng, start, days, outages_per_day)
        schedules[site] = sched
    return schedules


class Simulator:
    """Serve ``printers`` on loopback ports; ``start()`` runs the event loop on its own thread.

    ``auto=False`` gives printers that only do what API calls tell them (parity tests).
    Printers with ``api="bambu"`` listen on no port: they publish MQTT reports to the broker in
    ``bambu`` (faces/bambu.py), where ``self.bambu.act(...)`` controls them.
    While a printer's site is in an outage, requests get no answer for up to ``outage_hold``
    seconds and then the connection drops: the agent sees a timeout, as on a dead network.
    """

    def __init__(self, printers: list[PrinterSpec], api_key: str, clock: SimClock | None = None,
                 seed: int = 1, auto: bool = True, sites: dict[str, SiteSchedule] | None = None,
                 host: str = "127.0.0.1", outage_hold: float = 10.0, bambu: BambuSetup | None = None):
        self.clock = clock or SimClock()
        self.api_key = api_key
        self.host = host
        self.outage_hold = outage_hold
        now = self.clock.now()
        if sites is None:
            sites = plan_sites([p.site for p in printers], seed, now) if auto else {}
        self.sites = sites
        self.printers: dict[str, SimPrinter] = {}
        self.sockets: dict[int, socket.socket] = {}
        self.specs: dict[str, PrinterSpec] = {p.id: p for p in printers}
        self.face_state: dict[str, dict] = {}  # what a face keeps per printer (auth nonces, a selected file)
        # Called with (printer id, request, response) for every answer sent: tests check them.
        self.observe: Callable[[str, web.Request, web.StreamResponse], None] | None = None
        self._by_port: dict[int, SimPrinter] = {}
        self._site_of: dict[str, str] = {}
        self._api_of: dict[str, str] = {}
        for spec in printers:
            rng = random.Random(f"{seed}:printer:{spec.id}")
            printer = SimPrinter(spec.id, rng, now, sites.get(spec.site), auto=auto, model=spec.model)
            self.printers[spec.id] = printer
            self._site_of[spec.id], self._api_of[spec.id] = spec.site, spec.api
            if spec.api in HTTP_FACES:
                sock = _listen(host, spec.port)
                port = sock.getsockname()[1]
                self.sockets[port], self._by_port[port] = sock, printer
        self._bambu_setup = _check_bambu(printers, bambu)
        self.bambu: BambuFleet | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0

    # -- addresses ------------------------------------------------------------------------------
    def url(self, printer_id: str) -> str:
        for port, printer in self._by_port.items():
            if printer.id == printer_id:
                return f"http://{self.host}:{port}"
        raise KeyError(printer_id)

    def endpoints(self) -> dict[str, dict]:
        found = {p.id: {"url": f"http://{self.host}:{port}", "site": self._site_of[p.id], "api": self._api_of[p.id]}
                 for port, p in self._by_port.items()}
        for pid, serial in (self._bambu_setup.serials if self._bambu_setup else {}).items():
            found[pid] = {"serial": serial, "site": self._site_of[pid], "api": "bambu"}
        return found

    def site_down(self, printer_id: str, now: float) -> bool:
        site = self.sites.get(self._site_of[printer_id])
        return site is not None and site.down(now)

    # -- lifecycle ------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Start listening on every port (inside a running event loop)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Short shutdown: requests held by a simulated outage must not delay stopping.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        for sock in self.sockets.values():
            await web.SockSite(self._runner, sock).start()
        if self._bambu_setup is not None:
            self.bambu = BambuFleet(self, self._bambu_setup).start()
        log.info("simulating %d printer(s) at speed %g", len(self.printers), self.clock.speed)

    async def close(self) -> None:
        if self.bambu is not None:
            self.bambu.stop()
            self.bambu = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for sock in self.sockets.values():
            sock.close()

    def start(self) -> "Simulator":
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.serve())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self.close())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="simulator", daemon=True)
        self._thread.start()
        ready.wait(60)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        transport = request.transport
        port = transport.get_extra_info("sockname")[1] if transport else None
        printer = self._by_port.get(port)
        if printer is None:
            return _json(404, {"error": "Not found"})
        now = self.clock.now()
        if request.path == "/sim/clock":
            return _json(200, {"now": now, "speed": self.clock.speed})
        site = self.sites.get(self._site_of[printer.id])
        if site is not None and site.down(now):
            return await self._no_answer(request, site, now)
        printer.advance(now)
        response = await HTTP_FACES[self._api_of[printer.id]](self, request, printer, now)
        if self.observe is not None and request.transport is not None and not request.transport.is_closing():
            self.observe(printer.id, request, response)
        return response

    async def _no_answer(self, request: web.Request, site: SiteSchedule, now: float) -> web.StreamResponse:
        end = min(e for s, e in site.outages if s <= now < e)
        await asyncio.sleep(min(self.clock.real_seconds(end - now), self.outage_hold))
        if request.transport is not None:
            request.transport.abort()  # the connection just dies: nothing is ever answered
        return web.Response(status=504)

def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)


def _check_bambu(printers: list[PrinterSpec], setup: BambuSetup | None) -> BambuSetup | None:
    ids = [p.id for p in printers if p.api == "bambu"]
    unknown = [p.api for p in printers if p.api not in HTTP_FACES and p.api != "bambu"]
    if unknown:
        raise ValueError(f"the simulator does not speak {unknown[0]!r}")
    if ids and (setup is None or set(ids) - set(setup.serials)):
        raise ValueError(f"printers {ids} speak bambu: give bambu=BambuSetup(broker, serial for each)")
    return setup if ids else None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock
