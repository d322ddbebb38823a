"""The simulator speaking Moonraker 0.11's API: the websocket JSON-RPC subset the agent uses
(identify, server.info, printer.info, printer.objects.subscribe, server.history.list, pushed
status deltas every 0.25 s like Klipper, Klippy and history notifications) and the HTTP calls
the tests and the demo drive it with. ``/sim/klippy`` (``state=down|up``) and ``/sim/down``
(``on=1|0``) stand in for killing Klipper's host and Moonraker itself.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import WSMsgType, web

from devkit.sim.faces import moonraker_json as j
from devkit.sim.model import Conflict, SimPrinter

TICK = 0.25  # Klipper pushes status at most every 250 ms
PACE = 0.0003  # seconds per move: Klipper in batch mode, so parity tests take as long
LIMITS = (0.0, 200.0)  # the test printer's axes (devkit.servers.klipper)


async def handle(sim, request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    face = sim.face_state.setdefault(p.id, {})  # files, users' tokens, Klippy/Moonraker down
    path = request.path.rstrip("/")
    if path.startswith("/sim/"):
        return await _control(request, p, now, face, path)
    if face.get("down"):
        return _json(503, {"error": {"code": 503, "message": "Service Unavailable"}})
    key = request.headers.get("X-Api-Key")
    if key is not None and key != sim.api_key:  # no key: loopback is a trusted client
        return _json(401, {"error": {"code": 401, "message": "Unauthorized"}})
    if path == "/websocket":
        return await Session(sim, p, face).serve(request)
    try:
        return await _route(request, p, now, face, path, sim.clock)
    except Conflict as exc:
        return _json(400, {"error": {"code": 400, "message": str(exc)}})


async def _route(request: web.Request, p: SimPrinter, now: float, face: dict, path: str,
                 clock) -> web.StreamResponse:
    user = face.get("tokens", {}).get(request.headers.get("Authorization", "")[7:])
    if request.method == "GET":
        if path in ("/server/info", "/printer/info"):
            return _ok(_server_info(p, face) if path == "/server/info" else _printer_info(p, face))
        if path == "/printer/objects/query":
            wanted = set(request.query) or set(j.objects(p, now, face))
            return _ok({"eventtime": now, "status": {k: v for k, v in j.objects(p, now, face).items() if k in wanted}})
        if path == "/server/history/list":
            return _ok({"jobs": j.history(p, clock, int(request.query.get("limit", 50)))})
    elif request.method == "POST":
        if path == "/server/files/upload":
            form = await request.post()
            upload = form.get("file")
            face.setdefault("files", {})[upload.filename] = upload.file.read()
            return _json(201, {"item": {"path": upload.filename, "root": "gcodes"}, "action": "create_file"})
        if path == "/access/user":
            body = await request.json()
            token = f"sim-token-{body['username']}"
            face.setdefault("tokens", {})[token] = body["username"]
            return _ok({"username": body["username"], "token": token, "action": "user_created"})
        return _command(request, p, now, face, path, user)
    return _json(404, {"error": {"code": 404, "message": "Not Found"}})


def _command(request, p: SimPrinter, now: float, face: dict, path: str, user: str | None) -> web.Response:
    if path == "/printer/print/start":
        _start(p, now, face, request.query["filename"], user)
    elif path in ("/printer/print/pause", "/printer/print/resume"):
        p.pause(now, path.rsplit("/", 1)[1])
    elif path == "/printer/print/cancel":
        p.cancel(now)
    elif path == "/printer/gcode/script":
        _script(p, now, request.query.get("script", ""))
    elif path == "/printer/firmware_restart":
        _script(p, now, "FIRMWARE_RESTART")
    else:
        return _json(404, {"error": {"code": 404, "message": "Not Found"}})
    return _ok("ok")


def _start(p: SimPrinter, now: float, face: dict, name: str, user: str | None) -> None:
    gcode = face.get("files", {}).get(name)
    if gcode is None:
        raise Conflict(f"File {name} does not exist")
    p.print_file(now, name, gcode, user=user, pace=PACE)
    p.job.milestones = sorted(_stops(gcode) + p.job.milestones)


def _stops(gcode: bytes) -> list[tuple[float, str, str]]:
    """``PAUSE`` lines and moves beyond the axes, at the time Klipper would reach them."""
    stops, moves, pos = [], 0, {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
    for line in gcode.decode(errors="replace").splitlines():
        line = line.split(";", 1)[0].strip().upper()
        if line == "PAUSE":
            stops.append((moves * PACE, "pause", ""))
        elif line.startswith(("G0 ", "G1 ")):
            moves += 1
            pos.update((axis, float(value)) for axis, value in re.findall(r"([XYZE])(-?[\d.]+)", line))
            if any(not LIMITS[0] <= pos[axis] <= LIMITS[1] for axis in "XYZ"):
                text = f"Move out of range: {pos['X']:.3f} {pos['Y']:.3f} {pos['Z']:.3f} [{pos['E']:.3f}]"
                return stops + [(moves * PACE, "fail", text)]
    return stops


def _script(p: SimPrinter, now: float, script: str) -> None:
    command = script.strip().upper()
    if command == "M112":
        p.fail(now, "Shutdown due to M112 command")
    elif command in ("FIRMWARE_RESTART", "RESTART"):
        p.connect(now)


async def _control(request: web.Request, p: SimPrinter, now: float, face: dict, path: str) -> web.Response:
    if path == "/sim/klippy":
        down = request.query.get("state") == "down"
        if down:
            p.disconnect(now)
        elif face.get("klippy_down"):
            p.connect(now)
        face["klippy_down"] = down
    elif path == "/sim/down":
        face["down"] = request.query.get("on", "1") == "1"
    else:
        return _json(404, {"error": "Not found"})
    return _ok("ok")


def _server_info(p: SimPrinter, face: dict) -> dict:
    state, _ = j.klippy(p, face)
    return {"klippy_connected": state != "disconnected", "klippy_state": state,
            "moonraker_version": "v0.11.0-sim", "api_version": [1, 5, 0], "warnings": []}


def _printer_info(p: SimPrinter, face: dict) -> dict:
    state, message = j.klippy(p, face)
    if state == "disconnected":
        raise web.HTTPServiceUnavailable(text='{"error": {"code": 503, "message": "Klippy Host not connected"}}')
    return {"state": state, "state_message": message, "hostname": "sim", "software_version": "v0.12.0-sim"}


class Session:
    """One websocket client: answers its calls, pushes what changed every ``TICK``."""

    def __init__(self, sim, p: SimPrinter, face: dict):
        self.sim, self.p, self.face = sim, p, face
        self.ws = web.WebSocketResponse()
        self.subscribed: dict[str, list | None] = {}
        self.sent: dict[str, dict] = {}
        self.klippy = j.klippy(p, face)[0]
        self.seen = self._history_marks()

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        await self.ws.prepare(request)
        pusher = asyncio.ensure_future(self._push())
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._answer(msg.json())
        finally:
            pusher.cancel()
        return self.ws

    async def _answer(self, request: dict) -> None:
        method, params = request.get("method"), request.get("params") or {}
        now = self.sim.clock.now()
        self.p.advance(now)
        try:
            result = self._call(method, params, now)
        except web.HTTPException:
            reply = {"error": {"code": 503, "message": "Klippy Host not connected"}}
        except KeyError:
            reply = {"error": {"code": -32601, "message": f"Method not found: {method}"}}
        else:
            reply = {"result": result}
        await self.ws.send_json({"jsonrpc": "2.0", "id": request.get("id"), **reply})

    def _call(self, method: str, params: dict, now: float):
        if method == "server.connection.identify":
            return {"connection_id": id(self)}
        if method == "server.info":
            return _server_info(self.p, self.face)
        if method == "printer.info":
            return _printer_info(self.p, self.face)
        if method == "server.history.list":
            return {"count": 0, "jobs": j.history(self.p, self.sim.clock, int(params.get("limit", 50)))}
        if method == "printer.objects.query":  # the agent asks only what does not change: the configuration
            wanted = params.get("objects", {})
            return {"eventtime": now, "status": {k: v for k, v in j.configuration(self.p, self.face).items()
                                                 if k in wanted}}
        if method == "server.job_queue.status":  # the simulator queues nothing
            return {"queued_jobs": [], "queue_state": "ready"}
        if method == "printer.objects.subscribe":
            if j.klippy(self.p, self.face)[0] == "disconnected":
                raise web.HTTPServiceUnavailable()
            self.subscribed = dict(params.get("objects", {}))
            self.sent = self._wanted(now)
            return {"eventtime": now, "status": self.sent}
        raise KeyError(method)

    def _wanted(self, now: float) -> dict[str, dict]:
        out = {}
        for name, fields in j.objects(self.p, now, self.face).items():
            if name in self.subscribed:
                keep = self.subscribed[name]
                out[name] = {k: v for k, v in fields.items() if keep is None or k in keep}
        return out

    async def _push(self) -> None:
        while not self.ws.closed:
            await asyncio.sleep(TICK)
            if self.face.get("down"):
                await self.ws.close()
                return
            now = self.sim.clock.now()
            self.p.advance(now)
            for note in self._klippy_notes() + self._status_notes(now) + self._history_notes():
                await self.ws.send_json({"jsonrpc": "2.0", **note})

    def _klippy_notes(self) -> list[dict]:
        state = j.klippy(self.p, self.face)[0]
        if state == self.klippy:
            return []
        self.klippy = state
        if state == "disconnected":
            self.subscribed, self.sent = {}, {}  # Moonraker drops subscriptions with Klippy
        method = {"ready": "notify_klippy_ready", "shutdown": "notify_klippy_shutdown",
                  "disconnected": "notify_klippy_disconnected"}.get(state)
        return [{"method": method}] if method else []

    def _status_notes(self, now: float) -> list[dict]:
        delta = {}
        for name, fields in self._wanted(now).items():
            changed = {k: v for k, v in fields.items() if self.sent.get(name, {}).get(k) != v}
            if changed:
                delta[name] = changed
                self.sent.setdefault(name, {}).update(changed)
        return [{"method": "notify_status_update", "params": [delta, now]}] if delta else []

    def _history_marks(self) -> tuple[int, int]:
        running = self.p.job.id if self.p.job is not None and self.p.job.ended is None else 0
        return len(self.p.history) and self.p.history[-1].id, running

    def _history_notes(self) -> list[dict]:
        last_ended, running = self._history_marks()
        seen_ended, seen_running = self.seen
        self.seen = (last_ended, running)
        notes = [("finished", job) for job in self.p.history if job.id > seen_ended]
        if running and running != seen_running:
            notes.append(("added", self.p.job))
        return [{"method": "notify_history_changed", "params": [{"action": action, "job": j.entry(job, self.sim.clock)}]}
                for action, job in notes]


def _ok(result) -> web.Response:
    return web.json_response({"result": result})


def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)
