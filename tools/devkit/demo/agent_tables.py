"""The API-specific keys of an agent's ``[[printers]]`` table for a simulated printer."""

from __future__ import annotations

from typing import Callable


def _octoprint(stack, endpoint: dict) -> list[str]:
    return [f'url = "{endpoint["url"]}"', f'api_key_file = "{stack.key_file}"']


def _prusalink(stack, endpoint: dict) -> list[str]:
    # Digest auth: the simulated printers take user "maker" and the demo's key as password.
    return [f'url = "{endpoint["url"]}"', 'username = "maker"', f'password_file = "{stack.key_file}"']


def _moonraker(stack, endpoint: dict) -> list[str]:
    return [f'url = "{endpoint["url"]}"', f'api_key_file = "{stack.key_file}"']


def _bambu(stack, endpoint: dict) -> list[str]:
    # In a lab every Bambu printer is its own broker at its own address; in the demo one
    # Mosquitto plays them all, one TLS listener (and certificate named by the serial) each.
    broker, serial = stack.bambu_broker, endpoint["serial"]
    return [f'host = "{broker.host}"', f"port = {broker.endpoints[serial].port}", f'serial = "{serial}"',
            f'access_code_file = "{broker.access_code_file(serial)}"', f'ca_file = "{broker.ca_path}"',
            f"ftps_port = {broker.ftps(serial).port}"]  # its storage: the job's 3MF, for grams


# printer API -> (stack, the simulator's endpoint entry) -> TOML lines
AGENT_TABLES: dict[str, Callable[..., list[str]]] = {
    "octoprint": _octoprint,
    "prusalink": _prusalink,
    "moonraker": _moonraker,
    "bambu": _bambu,
}
