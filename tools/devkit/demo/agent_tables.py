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


# printer API -> (stack, the simulator's endpoint entry) -> TOML lines
AGENT_TABLES: dict[str, Callable[..., list[str]]] = {
    "octoprint": _octoprint,
    "prusalink": _prusalink,
    "moonraker": _moonraker,
}
