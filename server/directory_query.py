"""A directory question (server/directory.py): its filters, read from a URL's query string or the
CLI's options, with an error that names the filter and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.directory_config import ACCESS

FILTERS = ("material", "min_volume", "nozzle", "county", "free_within", "access")
_WORDS = re.compile(r"[^0-9a-z]+")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|min|d)?")


class BadQuery(ValueError):
    """A filter that does not read; the message names it and the fix."""


@dataclass(frozen=True)
class Query:
    material: str | None = None
    min_volume: tuple[float, float, float] | None = None
    nozzle: float | None = None
    counties: tuple[str, ...] = ()
    free_within_s: float | None = None
    access: str | None = None  # who wants to use it: a site open to them, or to the public

    def matches(self, e: dict) -> bool:
        return (self._material_ok(e) and self._volume_ok(e.get("volume"))
                and (self.access is None or self.access in e["access"] or "public" in e["access"])
                and (self.nozzle is None or any(abs(n - self.nozzle) < 1e-6 for n in e.get("nozzles") or []))
                and (not self.counties or e["county"].casefold() in {c.casefold() for c in self.counties})
                and (self.free_within_s is None or (e.get("free_in_s") is not None
                                                    and e["free_in_s"] <= self.free_within_s)))

    def _material_ok(self, e: dict) -> bool:
        if not self.material:
            return True
        return any(material_matches(self.material, m) for m in [*e.get("loaded", []), *e.get("materials", [])])

    def _volume_ok(self, volume) -> bool:
        if self.min_volume is None:
            return True
        # a part may be turned on the plate: compare sorted sides (Z is often the shortest anyway)
        return volume is not None and all(have >= need for have, need in
                                          zip(sorted(volume), sorted(self.min_volume)))


def material_matches(wanted: str, material: str) -> bool:
    """Every word of ``wanted`` is a word of ``material``: "PETG" matches "PETG-CF" and "Bambu
    PETG Basic"; "PETG-CF" does not match "PETG"."""
    want = [w for w in _WORDS.split(wanted.casefold()) if w]
    have = set(_WORDS.split(material.casefold()))
    return bool(want) and all(w in have for w in want)


def volume(text: str) -> tuple[float, float, float]:
    parts = [p for p in re.split(r"\s*[x×*,]\s*", text.strip().lower()) if p]
    try:
        sides = tuple(float(p) for p in parts)
    except ValueError:
        sides = ()
    if len(sides) != 3 or not all(0 < s <= 10_000 for s in sides):
        raise BadQuery(f"min_volume: {text[:40]!r} is not a volume — fix: write it as 250x250x250 (mm)")
    return sides  # type: ignore[return-value]


def duration_s(text: str) -> float:
    m = _DURATION.fullmatch(text.strip().lower())
    if not m:
        raise BadQuery(f"free_within: {text[:40]!r} is not a duration — fix: write it as 2h, 90m or 1d")
    return float(m.group(1)) * {"h": 3600, None: 3600, "m": 60, "min": 60, "d": 86400}[m.group(2)]


def nozzle(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("mm"))
    except ValueError:
        value = 0
    if not 0 < value <= 5:
        raise BadQuery(f"nozzle: {text[:40]!r} is not a nozzle diameter — fix: write it in mm, e.g. 0.6")
    return value


def from_params(params: dict[str, str]) -> Query:
    """A Query from filters by name (a URL's query string; the CLI's options)."""
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise BadQuery(f"{unknown[0][:40]}: not a filter — fix: use {', '.join(FILTERS)}")
    get = {k: v.strip() for k, v in params.items() if v and v.strip()}
    return Query(
        material=get.get("material"),
        min_volume=volume(get["min_volume"]) if "min_volume" in get else None,
        nozzle=nozzle(get["nozzle"]) if "nozzle" in get else None,
        counties=tuple(c.strip() for c in get.get("county", "").split(",") if c.strip()),
        free_within_s=duration_s(get["free_within"]) if "free_within" in get else None,
        access=access(get["access"]) if "access" in get else None,
    )


def access(text: str) -> str:
    if text.strip().lower() not in ACCESS:
        raise BadQuery(f"access: {text[:40]!r} is not a kind of user — fix: use one of {', '.join(ACCESS)}")
    return text.strip().lower()
