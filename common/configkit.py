"""Loading TOML config into typed structs with errors that name the key and the fix.

Shared by the agent and the collector as equals, so both report problems the same way:
``<file>: <key>: <problem> — fix: <what to do>``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import msgspec

from common import protocol
from common.urls import redact

T = TypeVar("T")


class ConfigError(Exception):
    def __init__(self, key: str, problem: str, fix: str, source: str = ""):
        self.key, self.problem, self.fix, self.source = key, problem, fix, source
        super().__init__(self.line())

    def line(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.key}: {self.problem} — fix: {self.fix}"


class Section(msgspec.Struct, forbid_unknown_fields=True, dict=True):
    """Base of every config table: unknown keys are errors (a typo must not pass silently)."""


class Invalid(ValueError):
    """Raised inside ``__post_init__`` checks: ``key`` is relative to the struct."""

    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"{key}\x1f{problem}\x1f{fix}")


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("(file)", f"{path} does not exist", "pass the path of your config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(syntax)", str(exc), "correct the TOML syntax at that line", str(path)) from None


def convert(data: dict, typ: type[T], source: str = "") -> T:
    try:
        return msgspec.convert(data, typ, strict=False)
    except msgspec.ValidationError as exc:
        raise _to_config_error(str(exc), source) from None


def check_entries(raw: dict, key: str, typ: type, source: str = "", prefix: str = "") -> None:
    """Check each entry of the table ``raw[key]`` on its own, so that an error names the entry
    (msgspec names a dict entry only as "[...]"): ``<prefix><key>.<name>.<field>``."""
    entries = (raw or {}).get(key)
    if not isinstance(entries, dict):
        return
    for name, entry in entries.items():
        try:
            convert(entry, typ, source)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{key}.{name}.{exc.key}".rstrip("."), exc.problem, exc.fix, source) from None


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)


def _to_config_error(text: str, source: str) -> ConfigError:
    m = _AT.match(text)
    msg, path = m.group("msg"), (m.group("path") or "").lstrip(".")
    if "\x1f" in msg:
        key, problem, fix = msg.split("\x1f")
        return ConfigError(_join(path, key), problem, fix, source)
    if found := re.match(r"Object missing required field `(\w+)`", msg):
        return ConfigError(_join(path, found.group(1)), "is missing", "add this required key", source)
    if found := re.match(r"Object contains unknown field `(\w+)`", msg):
        return ConfigError(_join(path, found.group(1)), "is not a known key", "remove it or check its spelling", source)
    if found := re.match(r"Expected `([^`]+)`, got `([^`]+)`", msg):
        return ConfigError(path or "(top)", f"is a {found.group(2)}", f"set it to a {found.group(1)}", source)
    return ConfigError(path or "(top)", msg, "see the example config", source)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- reusable checks ------------------------------------------------------------


def check_id(key: str, value: str) -> None:
    problem = protocol.id_problem(value)
    if problem:
        raise Invalid(key, f"{value!r} {problem}", "use an ID like 'oru-mk4-01'")


def check_http_url(key: str, value: str, secret: bool = False) -> None:
    """An http(s) URL with a host; errors show it without credentials, a secret one not at all."""
    shown = "the URL it holds" if secret else repr(redact(value))
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise Invalid(key, f"{shown} is not an http(s) URL", "write it like 'http://127.0.0.1:5000'")
    try:
        parsed.port
    except ValueError:
        raise Invalid(key, f"{shown} has a bad port", "use a port number from 1 to 65535") from None


def check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise Invalid(key, f"{value} is out of range", f"use a value from {low} to {high}")


def read_secret(key: str, file: str | None, env: str | None, required: bool = True) -> str | None:
    """A secret from a file (its first line, stripped: what follows is ignored) or an
    environment variable (stripped; one line).

    Secrets never live in the config file itself, so configs can be shared and logged. One line
    only: a line break would travel on into an HTTP header or a login as it is.
    """
    if file:
        value = _read_secret_file(key, file).partition("\n")[0].strip()
        if not value:
            raise Invalid(f"{key}_file", f"the first line of {file} is empty", "put the secret on the first line")
        return value
    if env:
        value = _read_secret_env(key, env).strip()
        if "\n" in value or "\r" in value:
            raise Invalid(f"{key}_env", f"environment variable {env} holds a line break", "put the secret on one line")
        return value
    if required:
        raise Invalid(f"{key}_file", "no secret given", f"set {key}_file (a path) or {key}_env (a variable name)")
    return None


def read_secret_lines(key: str, file: str | None, env: str | None) -> list[str]:
    """Several secrets, one a line (blank lines and ``#`` comments skipped): a file or a variable."""
    text = _read_secret_file(key, file) if file else _read_secret_env(key, env)
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _read_secret_file(key: str, file: str) -> str:
    try:
        return Path(file).read_text()
    except OSError as exc:
        raise Invalid(f"{key}_file", f"cannot read {file} ({exc.strerror})",
                      "create the file with the secret, readable by the service user") from None


def _read_secret_env(key: str, env: str) -> str:
    value = os.environ.get(env, "")
    if not value.strip():
        raise Invalid(f"{key}_env", f"environment variable {env} is not set or empty",
                      f"export {env}=… before starting, or use {key}_file")
    return value


class Secret:
    """Holds a secret; its str and repr never show the value, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def reveal(self) -> str:
        return self._value
