"""A Spoolman stand-in: the part of Spoolman's REST API and websocket that Moonraker uses.

No Spoolman runs here, so this answers as Spoolman 0.22 does for what Moonraker's ``spoolman``
component asks (``moonraker/components/spoolman.py``): the websocket ``/api/v1/spool`` it holds
open (its sign that Spoolman is up), ``GET /api/v1/spool/{id}`` (the spool, with its filament:
material, colour as ``color_hex`` without "#", density, diameter) and ``PUT
/api/v1/spool/{id}/use`` (the extrusion Moonraker reports). A missing spool is 404 with
Spoolman's ``message``. Field names follow Spoolman's own schema (``spoolman/api/v1/models.py``).

    with SpoolmanStandIn({1: spool(1, "PETG", "FF8000")}) as spoolman:
        spoolman.url   # Moonraker's [spoolman] server
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


def spool(spool_id: int, material: str, color_hex: str, name: str = "", density: float = 1.24) -> dict:
    """A spool as Spoolman's ``GET /api/v1/spool/{id}`` shows it."""
    return {
        "id": spool_id, "registered": "2026-11-02T08:00:00Z", "first_used": None, "last_used": None,
        "filament": {"id": spool_id, "registered": "2026-11-02T08:00:00Z", "name": name or f"{material} Basic",
                     "vendor": {"id": 1, "registered": "2026-11-02T08:00:00Z", "name": "Prusament", "extra": {}},
                     "material": material, "price": 25.0, "density": density, "diameter": 1.75, "weight": 1000.0,
                     "spool_weight": 200.0, "color_hex": color_hex, "extra": {}},
        "remaining_weight": 1000.0, "used_weight": 0.0, "remaining_length": 335_000.0, "used_length": 0.0,
        "archived": False, "extra": {},
    }


class SpoolmanStandIn:
    def __init__(self, spools: dict[int, dict], host: str = "127.0.0.1"):
        self.spools, self.host = spools, host
        self.port: int | None = None
        self.used: dict[int, float] = {}  # mm Moonraker reported per spool
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="spoolman stand-in", daemon=True)
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "SpoolmanStandIn":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> "SpoolmanStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/spool", self._websocket)
        app.router.add_get("/api/v1/spool/{id}", self._get_spool)
        app.router.add_put("/api/v1/spool/{id}/use", self._use)
        app.router.add_get("/api/v1/health", self._health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for _ in ws:  # Spoolman pushes spool changes; Moonraker sends nothing
                pass
        finally:
            self._sockets.discard(ws)
        return ws

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    def _spool_or_404(self, request: web.Request) -> dict | web.Response:
        try:
            spool_id = int(request.match_info["id"])
        except ValueError:
            return web.json_response({"message": "Invalid spool ID"}, status=422)
        found = self.spools.get(spool_id)
        if found is None:
            return web.json_response({"message": f"No spool with ID {spool_id} found."}, status=404)
        return found

    async def _get_spool(self, request: web.Request) -> web.Response:
        found = self._spool_or_404(request)
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _use(self, request: web.Request) -> web.Response:
        found = self._spool_or_404(request)
        if isinstance(found, web.Response):
            return found
        body = await request.json()
        self.used[found["id"]] = self.used.get(found["id"], 0.0) + float(body.get("use_length") or 0.0)
        return web.json_response(found)
