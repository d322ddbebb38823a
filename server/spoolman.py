"""Spool prices and materials from a Spoolman server (https://github.com/Donkie/Spoolman), optional:

```toml
[spoolman]
url = "http://spoolman.lab.local:7912"
timeout = 5          # seconds
```

The report reads ``GET /api/v1/spool`` once (again after 10 minutes) and makes, per material type, a price per kg (the
spools' prices over their net weights: a spool's own price, else its filament's, over its
initial weight, else its filament's full-spool weight) and a density. The inventory's
``[materials.<TYPE>]`` values win; Spoolman fills what it leaves out. A Spoolman that cannot be
read leaves the report as it would be without it, and a note says why.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from common.configkit import Section, check_http_url, check_range

log = logging.getLogger(__name__)


class SpoolmanSettings(Section):
    url: str
    timeout: float = 5.0

    def __post_init__(self):
        check_http_url("url", self.url)
        check_range("timeout", self.timeout, 0.1, 120)


@dataclass(frozen=True)
class SpoolFigures:
    price_per_kg: float | None
    density: float | None
    diameter: float | None


class Unreadable(Exception):
    """Spoolman could not be read: the reason, in one line."""


def read(settings: SpoolmanSettings) -> list[dict]:
    """Every (non-archived) spool Spoolman lists."""
    url = settings.url.rstrip("/") + "/api/v1/spool"
    try:
        with urllib.request.urlopen(url, timeout=settings.timeout) as answer:  # noqa: S310 (http(s) checked at load)
            body = answer.read(50_000_000)
        spools = json.loads(body)
    except urllib.error.HTTPError as exc:
        raise Unreadable(f"{url} answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise Unreadable(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if not isinstance(spools, list):
        raise Unreadable(f"{url} answered no list of spools")
    return [s for s in spools if isinstance(s, dict) and isinstance(s.get("filament"), dict)]


def figures(spools: list[dict], norm) -> dict[str, SpoolFigures]:
    """Per material (``norm``-ed name): price per kg over all priced spools, and a density."""
    money: dict[str, list[float]] = {}
    density: dict[str, float] = {}
    diameter: dict[str, float] = {}
    names: dict[str, str] = {}
    for s in spools:
        f = s["filament"]
        material = f.get("material")
        if not isinstance(material, str) or not norm(material):
            continue
        key = norm(material)
        names.setdefault(key, material)
        if _number(f.get("density")):
            density.setdefault(key, float(f["density"]))
        if _number(f.get("diameter")):
            diameter.setdefault(key, float(f["diameter"]))
        price = s.get("price") if _number(s.get("price")) else f.get("price")
        weight = s.get("initial_weight") if _number(s.get("initial_weight")) else f.get("weight")
        if _number(price) and _number(weight) and weight > 0:
            total = money.setdefault(key, [0.0, 0.0])
            total[0] += float(price)
            total[1] += float(weight)
    return {key: SpoolFigures(money[key][0] / money[key][1] * 1000 if key in money else None,
                              density.get(key), diameter.get(key)) for key in names}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


__all__ = ["SpoolmanSettings", "SpoolFigures", "Unreadable", "read", "figures"]
