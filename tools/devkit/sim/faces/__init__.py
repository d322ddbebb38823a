"""The printer APIs the simulator speaks: one module per API, keyed like the agent's ``type``."""

from devkit.sim.faces import moonraker, octoprint, prusalink

# api -> async handle(simulator, request, printer, now) for printers reached over HTTP
HTTP_FACES = {
    "octoprint": octoprint.handle,
    "prusalink": prusalink.handle,
    "moonraker": moonraker.handle,
}
