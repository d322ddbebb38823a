"""The simulator speaking PrusaLink: the v1 API and the legacy one, behind digest auth.

A printer whose spec has ``firmware = "legacy"`` speaks only the legacy API (firmware before
4.7.0, MINI 5.1.0) and also takes an ``X-Api-Key``. A switched-off printer (phase ``off``) does
not answer at all: PrusaLink runs on the printer itself. Paths under ``/sim/`` are the
simulator's own (faults, a person's actions at the printer); they are not PrusaLink.

This is the only PrusaLink server that can run here (the real one is printer firmware); its
answers are checked against Prusa's OpenAPI specs in tests/integration/test_prusalink_spec.py.
"""

from __future__ import annotations

import json

from aiohttp import web

from devkit.sim.faces import prusalink_json as j
from devkit.sim.faces.prusalink_auth import REALM, DigestGate
from devkit.sim.model import Conflict, SimPrinter

NONCE_TTL = 5.0  # seconds, as Buddy firmware


async def handle(sim, request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    if request.path.startswith("/sim/"):
        return await _sim_control(request, p, now)
    if p.phase == "off":
        if request.transport is not None:
            request.transport.abort()  # powered off: nothing answers
        return web.Response(status=504)
    legacy = sim.specs[p.id].firmware == "legacy"
    refused = _refused(sim, request, p, legacy)
    if refused is not None:
        return refused
    try:
        return await (_legacy_route if legacy else _v1_route)(sim, request, p, now)
    except Conflict as exc:
        return _error(request, 409, "Conflict", str(exc))


def gate(sim, p: SimPrinter) -> DigestGate:
    """The printer's digest gate, made on first use; its password is the simulator's key."""
    state = sim.face_state.setdefault(p.id, {})
    if "gate" not in state:
        state["gate"] = DigestGate(sim.api_key, NONCE_TTL)
    return state["gate"]


def _refused(sim, request: web.Request, p: SimPrinter, legacy: bool) -> web.Response | None:
    key = request.headers.get("X-Api-Key")
    if legacy and key is not None:
        if key == sim.api_key:
            return None
        return _error(request, 401, "Unauthorized", "Bad X-Api-Key",
                      {"WWW-Authenticate": f'ApiKey realm="{REALM}"'})
    challenge = gate(sim, p).check(request.method, request.raw_path, request.headers.get("Authorization"))
    if challenge is None:
        return None
    return _error(request, 401, "Unauthorized", "Unauthorized", {"WWW-Authenticate": challenge})


async def _v1_route(sim, request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    path, method = request.path, request.method
    if method == "GET":
        if path == "/api/version":
            return _json(200, j.version(p, legacy=False))
        if path == "/api/v1/info":
            return _json(200, j.info(p))
        if path == "/api/v1/status":
            return _json(200, j.status(p, now))
        if path == "/api/v1/job":
            return _json(200, j.job(p, now)) if j.has_job(p) else web.Response(status=204)
        if path in ("/api/printer", "/api/job"):  # newer firmware still serves the legacy API
            return await _legacy_route(sim, request, p, now, link=True)
        if path.startswith("/api/v1/files/usb/"):
            return _file_info(request, p, sim.face_state.setdefault(p.id, {}), path[len("/api/v1/files/usb/"):])
    if path.startswith("/api/v1/job/"):
        return _job_command(request, p, now, path[len("/api/v1/job/"):].split("/"))
    if method == "PUT" and path.startswith("/api/v1/files/"):
        return await _upload_put(request, p, now, path.rsplit("/", 1)[-1], sim.face_state.setdefault(p.id, {}))
    return _error(request, 404, "Not Found", "Not Found")


def _job_command(request: web.Request, p: SimPrinter, now: float, parts: list[str]) -> web.StreamResponse:
    if not parts[0].isdigit():
        return _error(request, 400, "Bad Request", "Bad job id")
    if not j.has_job(p) or int(parts[0]) != p.job.id:
        return _error(request, 404, "Not Found", "No such job")
    command = (request.method, parts[1] if len(parts) > 1 else "")
    if command == ("DELETE", ""):
        p.cancel(now)
    elif command == ("PUT", "pause") and p.phase == "printing":
        p.pause(now, "pause")
    elif command == ("PUT", "resume") and p.phase == "paused":
        p.pause(now, "resume")
    elif command[0] == "PUT" and command[1] in ("pause", "resume"):
        raise Conflict(f"Cannot {command[1]} now")
    else:
        return _error(request, 400, "Bad Request", "Unknown command")
    return web.Response(status=204)


async def _upload_put(request: web.Request, p: SimPrinter, now: float, name: str, state: dict) -> web.StreamResponse:
    gcode = await request.read()
    if request.headers.get("Print-After-Upload") == "?1":
        p.print_file(now, name, gcode, user=None)
    state.setdefault("files", {})[j.short_name(name)] = (name, len(gcode), int(now), j.gcode_meta(gcode))
    return web.Response(status=201)


def _file_info(request: web.Request, p: SimPrinter, state: dict, short: str) -> web.Response:
    """A file uploaded to the printer, or the file of a simulated job (its meta made up)."""
    known = state.get("files", {}).get(short)
    if known is None and p.job is not None and j.short_name(p.job.name) == short:
        known = (p.job.name, p.job.size, p.job.date, j.simulated_meta(p.job))
    if known is None:
        return _error(request, 404, "Not Found", "Not Found")
    return _json(200, j.print_file(*known))


async def _legacy_route(sim, request: web.Request, p: SimPrinter, now: float, link: bool = False) -> web.StreamResponse:
    path, method = request.path, request.method
    if method == "GET":
        if path == "/api/version":
            return _json(200, j.version(p, legacy=True))
        if path == "/api/printer":
            return _json(200, j.legacy_printer(p, now, link))
        if path == "/api/job":
            return _json(200, j.legacy_job(p, now))
    elif method == "POST" and path == "/api/files/local":
        return await _upload_post(request, sim.face_state.setdefault(p.id, {}))
    elif method == "POST" and path == "/api/job":
        return _legacy_command(request, p, now, await request.json(), sim.face_state.get(p.id, {}))
    return _error(request, 404, "Not Found", "Not Found")


async def _upload_post(request: web.Request, state: dict) -> web.StreamResponse:
    form = await request.post()
    upload = form.get("file")
    if upload is None or not hasattr(upload, "file"):
        return _error(request, 400, "Bad Request", "No file included")
    state["selected"] = (upload.filename, upload.file.read())  # the legacy API starts the selected file
    return _json(201, j.uploaded(upload.filename))


def _legacy_command(request: web.Request, p: SimPrinter, now: float, body: dict, state: dict) -> web.StreamResponse:
    command = body.get("command") if isinstance(body, dict) else None
    if command == "start" and state.get("selected"):
        p.print_file(now, *state["selected"], user=None)
    elif command == "cancel":
        p.cancel(now)
    elif command == "pause":
        p.pause(now, body.get("action", "pause"))
    else:
        return _error(request, 409, "Conflict", f"Cannot {command!r} now")
    return web.Response(status=204)


async def _sim_control(request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    """What a person does at the printer, faults and power: the simulator's own calls."""
    body = await request.json() if request.can_read_body else {}
    action = request.path[len("/sim/"):]
    try:
        if action == "fault":
            p.fail(now, body.get("text", "fault"))
        elif action == "attention":
            p.need_attention(now)
        elif action == "busy":
            p.set_busy(now, bool(body.get("on", True)))
        elif action == "ready":
            p.set_ready(now)
        elif action == "clear":
            p.connect(now)
        elif action == "power":
            (p.connect if body.get("on", True) else p.disconnect)(now)
        else:
            return web.json_response({"error": f"unknown /sim/ call {action!r}"}, status=404)
    except Conflict as exc:
        return web.json_response({"error": str(exc)}, status=409)
    return web.Response(status=204)


def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)


def _error(request: web.Request, status: int, title: str, text: str, headers: dict | None = None) -> web.Response:
    """An error as the firmware sends it: JSON if asked for, else ``<code>: <reason>`` as text."""
    headers = {"Content-Location": "/error", **(headers or {})}
    if "application/json" in request.headers.get("Accept", ""):
        return web.Response(status=status, text=json.dumps(j.error(status, title, text)),
                            content_type="application/json", headers=headers)
    return web.Response(status=status, text=f"{status}: {title}", content_type="text/plain", headers=headers)
