"""The simulator speaking OctoPrint 1.11's REST API (the subset the agent and the tests use)."""

from __future__ import annotations

from aiohttp import web

from devkit.sim.faces import octoprint_json as j
from devkit.sim.model import Conflict, SimPrinter


async def handle(sim, request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    """One request to printer ``p``; ``sim`` is the Simulator (its API key)."""
    key = request.headers.get("X-Api-Key") or request.query.get("apikey")
    if key != sim.api_key:
        return _json(403, j.FORBIDDEN)
    try:
        return await _route(request, p, now)
    except Conflict as exc:
        return _json(409, {"error": str(exc)})


async def _route(request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    path, method = request.path.rstrip("/"), request.method
    if method == "GET":
        if path == "/api/version":
            return _json(200, j.VERSION)
        if path == "/api/job":
            return _json(200, j.job(p, now))
        if path == "/api/printer":
            exclude = set(filter(None, request.query.get("exclude", "").split(",")))
            return _json(*j.printer(p, now, exclude))
        if path == "/api/connection":
            return _json(200, j.connection(p))
        if path == "/api/printerprofiles":
            return _json(200, j.printer_profiles(p))
    elif method == "POST":
        if path == "/api/files/local":
            return await _upload(request, p, now)
        body = await request.json() if request.can_read_body else {}
        if path == "/api/job":
            return _job_command(p, now, body)
        if path == "/api/connection":
            (p.connect if body.get("command") == "connect" else p.disconnect)(now)
            return web.Response(status=204)
        if path == "/api/printer/command":
            for command in body.get("commands", []):
                _debug_command(p, now, command)
            return web.Response(status=204)
    return _json(404, {"error": "Not found"})


async def _upload(request: web.Request, p: SimPrinter, now: float) -> web.StreamResponse:
    form = await request.post()
    upload = form.get("file")
    if upload is None or not hasattr(upload, "file"):
        return _json(400, {"error": "No file included"})
    name, gcode = upload.filename, upload.file.read()
    if str(form.get("print", "false")).lower() == "true":
        p.print_file(now, name, gcode, user="operator")
    return _json(201, {"done": True, "files": {"local": {"name": name, "origin": "local", "path": name}}})


def _job_command(p: SimPrinter, now: float, body: dict) -> web.StreamResponse:
    command = body.get("command")
    if command == "cancel":
        p.cancel(now)
    elif command == "pause":
        p.pause(now, body.get("action", "toggle"))
    else:
        return _json(400, {"error": f"Unknown command {command!r}"})
    return web.Response(status=204)


def _debug_command(p: SimPrinter, now: float, command: str) -> None:
    """The virtual printer's ``!!DEBUG:`` hooks that tests use to make a printer misbehave."""
    if command.startswith("!!DEBUG:send Error:"):
        p.fail(now, command.split("Error:", 1)[1].strip())
    elif command in ("!!DEBUG:mintemp_error", "!!DEBUG:maxtemp_error", "!!DEBUG:trigger_fatal_error_marlin", "M112"):
        p.fail(now, "Printer halted. kill() called!")
    elif command == "!!DEBUG:action_disconnect":
        p.disconnect(now)
    elif command == "!!DEBUG:action_pause":
        p.pause(now, "pause")


def _json(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)
