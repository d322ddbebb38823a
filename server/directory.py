"""The regional printer directory (docs/directory.md): which printer in the network can do a job,
and when. One answer for the HTTP API (``/api/directory``), the CLI (``printfarm-server
directory``), the status page's "find a printer" view and, through the ``printer_info`` points,
Grafana.

A printer's capabilities are what it says itself (its agent's Info: model, build volume, tools
and nozzles, materials loaded, enclosure, its own job queue) completed by the inventory
(server/directory_config.py). Its availability is its live state, the time left of its job plus
its queue, and the bookings file. Nothing here carries a file name, a user, a state text (a
printer may quote the file there) or a booking's customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from server import bookings as bookings_mod
from server.directory_config import capabilities_of
from server.directory_query import Query

BUSY = frozenset({"printing", "paused", "finishing"})
DOWN = frozenset({"offline", "unreachable", "error", "unknown"})
BOOKING_HORIZON_MS = 14 * 86400_000  # bookings shown ahead


def capabilities(inventory, printer: str, info: dict | None) -> dict:
    """What the printer can do: its own inventory keys (a deliberate correction, e.g. of an
    OctoPrint profile left at its default 200 mm cube) over what it says itself (``info``, Info's
    fields) over its model's inventory keys. Materials loaded come from the printer only,
    materials kept from the inventory only."""
    own, model = capabilities_of(inventory, printer)
    info = info or {}
    tools = info.get("tools") or []
    said = {"model": info.get("model"), "volume": info.get("volume"), "enclosed": info.get("enclosed"),
            "tools": len(tools) or None,
            "nozzle_type": next((t["nozzle_type"] for t in tools if t.get("nozzle_type")), None)}
    nozzles = [t["nozzle_mm"] for t in tools if t.get("nozzle_mm")]

    def pick(key):
        for source in (own, said, model):
            if source.get(key) is not None:
                return source[key]
        return None

    return {
        "model": pick("model"), "volume": pick("volume"), "tools": pick("tools"),
        "nozzles": [own["nozzle_mm"]] if "nozzle_mm" in own else nozzles or
                   ([model["nozzle_mm"]] if "nozzle_mm" in model else []),
        "nozzle_type": pick("nozzle_type"),
        "loaded": _unique(t["material"] for t in [*tools, *(info.get("slots") or [])] if t.get("material")),
        "materials": list(own.get("materials") or model.get("materials") or []),
        "enclosed": pick("enclosed"),
    }


def _unique(items) -> list:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class Availability:
    state: str
    available: bool  # free now
    free_in_s: float | None  # seconds until free; None: not known, or down
    queued_jobs: int | None
    booked_now: bool
    next_booking: tuple[int, int] | None  # (from, to) ms, no customer

    def as_dict(self) -> dict:
        nb = self.next_booking
        return {"state": self.state, "available": self.available, "free_in_s": self.free_in_s,
                "queued_jobs": self.queued_jobs, "booked_now": self.booked_now,
                "next_booking": {"from": nb[0], "to": nb[1]} if nb else None}


def availability(p, agent_online: bool, spans: list, now_ms: int) -> Availability:
    """``p``: the printer's live state (LiveFleet.snapshot()); ``spans``: its bookings, by start."""
    state = p["state"] if agent_online else "offline"
    info = p["info"] or {}
    queued = info.get("queued_jobs")
    busy_until = _busy_until(p, state, info, now_ms)
    booked_now = any(b.start_ms <= now_ms < b.end_ms for b in spans)
    upcoming = [(b.start_ms, b.end_ms) for b in spans if b.end_ms > now_ms and b.start_ms < now_ms + BOOKING_HORIZON_MS]
    if busy_until is None:
        return Availability(state, False, None, queued, booked_now, upcoming[0] if upcoming else None)
    free_at = _after_bookings(busy_until, spans)
    free_in = max(0.0, (free_at - now_ms) / 1000)
    return Availability(state, free_in == 0, round(free_in), queued, booked_now, upcoming[0] if upcoming else None)


def _busy_until(p, state: str, info: dict, now_ms: int) -> int | None:
    """When the printer's own work (its job and queue) ends, in ms; None when not known or down."""
    if state in DOWN:
        return None
    until = now_ms
    if state in BUSY:
        if p["time_left"] is None or p["last_seen"] is None:
            return None
        # time_left was the estimate at the sample's time, not now
        until = max(now_ms, p["last_seen"] + int(p["time_left"] * 1000))
    if info.get("queued_jobs"):
        if info.get("queued_s") is None:
            return None
        until += int(info["queued_s"] * 1000)
    return until


def _after_bookings(t: int, spans: list) -> int:
    """The first moment at or after ``t`` that no booking holds (``spans`` sorted by start)."""
    for b in spans:
        if b.start_ms <= t < b.end_ms:
            t = b.end_ms
    return t


class Directory:
    """The directory over an inventory and a live fleet (server/live.py)."""

    def __init__(self, inventory, fleet):
        self.inventory, self.fleet = inventory, fleet
        self.spans = bookings_mod.merged(inventory.attribution.booked)

    def answer(self, query: Query, now_ms: int, own_org: str | None = None) -> list[dict]:
        """Published printers matching ``query``, soonest free first. ``own_org``: the viewer's
        organisation ID, whose printers show with live state whatever their site's policy."""
        out = [e for e in self._entries(now_ms, own_org) if query.matches(e)]
        return sorted(out, key=lambda e: (e["free_in_s"] is None, e["free_in_s"] or 0, e["county"], e["site"],
                                          e["printer"]))

    def _entries(self, now_ms: int, own_org: str | None):
        snapshot = self.fleet.snapshot()  # one consistent view, taken under the fleet's lock
        states = {(p["site"], p["printer"]): p for p in snapshot["printers"]}
        agents = {a["agent"]: a["state"] for a in snapshot["agents"]}
        for printer_id, entry in sorted(self.inventory.printers.items()):
            site = self.inventory.sites[entry.site]
            org = self.inventory.org_of_site[entry.site]
            own = own_org is not None and org == own_org
            policy = "live" if own else site.directory
            if policy == "hidden":
                continue
            p = states.get((entry.site, printer_id))
            yield self._entry(printer_id, entry, site, p, policy, agents, now_ms)

    def _entry(self, printer_id, entry, site, p, policy, agents, now_ms) -> dict:
        organisation = self.inventory.orgs[self.inventory.org_of_site[entry.site]].name
        out = {"printer": printer_id, "name": entry.name or printer_id, "site": entry.site,
               "site_name": site.name or entry.site, "organisation": organisation, "county": site.county,
               "access": list(site.access), "contact": site.contact, "hours": site.hours, "publish": policy,
               **capabilities(self.inventory, printer_id, p["info"] if p else None)}
        if policy != "live" or p is None:
            return out | NO_LIVE_STATE
        online = p["agent"] is None or agents.get(p["agent"], "online") == "online"
        spans = self.spans.get((entry.site, printer_id), []) + self.spans.get((entry.site, ""), [])
        return out | availability(p, online, sorted(spans, key=lambda b: b.start_ms), now_ms).as_dict()


NO_LIVE_STATE = {"state": None, "available": None, "free_in_s": None, "queued_jobs": None, "booked_now": None,
                 "next_booking": None}


__all__ = ["Directory", "Query", "capabilities", "availability"]
