"""What receivers get for an incident: the webhook's JSON, and title + text for Apprise."""

from __future__ import annotations

from datetime import datetime, timezone

from common.text import chat

_LINES = (("Printer", "printer"), ("Agent", "agent"), ("Site", "site"), ("Organisation", "organisation"),
          ("County", "county"), ("File", "file"), ("Error", "error"), ("Heater", "heater"))


def notification(incident, kind: str, now: float, now_state: str = "") -> dict:
    # Printer texts were made safe for chat where they entered (engine.py); the inventory's names
    # are made so here, for what receivers show (routing matched the names as they are).
    d = {**incident.details, "organisation": chat(incident.details.get("organisation")),
         "county": chat(incident.details.get("county"))}
    title, first = _headline(incident, kind, now, now_state)
    lines = [first, ""]
    lines += [f"{label}: {d[key]}" for label, key in _LINES if d.get(key)]
    if incident.events > 1:
        lines.append(f"Events: {incident.events} since the last notice (the newest is shown)")
    lines += [f"Since: {iso(incident.opened)}", f"Incident: {incident.id}"]
    return {
        "kind": kind, "incident": incident.id, "rule": incident.rule, "severity": incident.severity,
        "title": title, "summary": incident.summary, "message": incident.message, "text": "\n".join(lines),
        "printer": d.get("printer"), "agent": d.get("agent"), "site": d.get("site"),
        "organisation": d.get("organisation"), "county": d.get("county"), "file": d.get("file"),
        "error": d.get("error"), "opened_at": iso(incident.opened), "at": iso(now),
        "queued_at": now,
    }


def _headline(incident, kind: str, now: float, now_state: str) -> tuple[str, str]:
    d = incident.details
    if kind == "resolved":
        again = f": {d.get('printer') or d.get('agent')} is {now_state} again" if now_state else ""
        return f"[RESOLVED] {incident.summary}", f"Resolved after {duration(now - incident.opened)}{again}."
    if kind == "repeat":
        return (f"[{incident.severity.upper()}, still open] {incident.summary}",
                f"Still open after {duration(now - incident.opened)}: {incident.message}")
    return f"[{incident.severity.upper()}] {incident.summary}", incident.message


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
