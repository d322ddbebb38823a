"""The alert engine: rules in, one notification per incident out.

- An incident opens when a rule first reports an alert for a printer (or agent); while it is
  open, that rule's further alerts are the same incident and send nothing. It closes when the
  rule says it ``clears``, with one recovery notice.
- Unresolved critical incidents are re-sent every ``repeat_interval``; after a notification,
  the same rule on the same printer waits ``cooldown`` before notifying again (a flapping
  printer notifies once). Low-severity alerts wait out ``quiet_hours``.
- Routes pick the receivers by site, organisation, county, rule and severity.
- Open incidents (and undelivered notifications) live in a JSON file, so a collector restart
  neither re-sends nor forgets them.

``on_message`` runs on the ingestion thread and only does bookkeeping plus, on a state change,
the rules of that one printer; sending happens on the notifiers' threads, and time-based rules
(grace periods, stalls, heaters) on the engine's own tick thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from common import protocol
from server import lineproto
from server.metrics import Metrics
from server.alerts.config import RANK, AlertsConfig
from server.alerts.notifiers import Delivery, Sender, make_senders
from server.alerts.rules import AGENT_RULES, PRINTER_RULES, Alert
from server.alerts.watch import ACTIVE_STATES, AgentWatch, PrinterWatch

log = logging.getLogger(__name__)

ONE_SHOT_MEMORY = 2 * 86400.0  # how long a one-shot event is remembered against redelivery
RULES = {rule.name: rule for rule in PRINTER_RULES + AGENT_RULES}


@dataclass(slots=True)
class Incident:
    id: str
    rule: str
    subject: str
    severity: str
    summary: str
    message: str
    details: dict
    opened: float
    notified_at: float | None = None  # last firing or repeat notification
    hold_until: float | None = None  # quiet hours or cooldown: notify then, if still open
    one_shot: bool = False
    repeats: int = 0

    @property
    def key(self) -> str:
        return f"{self.rule}/{self.subject}"

    def public(self) -> dict:
        out = asdict(self)
        out["opened"] = _iso(self.opened)
        out["notified_at"] = _iso(self.notified_at) if self.notified_at else None
        out["hold_until"] = _iso(self.hold_until) if self.hold_until else None
        return out


class Engine:
    def __init__(self, cfg: AlertsConfig, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 sender_factory: Callable[[str, object], list[Sender]] = make_senders,
                 metrics: Metrics | None = None):
        self.cfg, self.write, self.clock = cfg, write, clock
        self.metrics = metrics or Metrics()
        self.printers: dict[str, PrinterWatch] = {}
        self.agents: dict[str, AgentWatch] = {}
        self.open: dict[str, Incident] = {}
        self.last_notified: dict[str, float] = {}
        self.one_shots: dict[str, float] = {}
        self.dropped: dict[str, int] = {}  # agents' drop counts already seen
        self._newest_ts: dict[str, int] = {}  # per printer, from the last run: older redeliveries are ignored
        self._lock = threading.RLock()
        self._path = Path(cfg.state_file)
        self.deliveries: dict[str, list[Delivery]] = {
            name: [Delivery(sender, r.retry_min, r.retry_max, r.give_up_after, r.queue_size, clock, self.metrics)
                   for sender in sender_factory(name, r)]
            for name, r in cfg.receivers.items()
        }
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="alert-tick", daemon=True)
        self._outbox = self._load()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        for targets in self.deliveries.values():
            for delivery in targets:
                for note in self._outbox.pop(delivery.name, []):
                    delivery.put(note)
                delivery.start()
        self._ticker.start()
        log.info("alerts: %d rule(s) on, %d receiver(s), %d open incident(s) restored",
                 sum(_enabled(self.cfg, r.name) for r in PRINTER_RULES + AGENT_RULES),
                 len(self.deliveries), len(self.open))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout)
        outbox = {}
        deliveries = [d for targets in self.deliveries.values() for d in targets]
        for delivery in deliveries:  # all at once: hung receivers share one timeout
            delivery.stop(0)
        deadline = time.monotonic() + timeout
        for delivery in deliveries:
            pending = delivery.stop(max(0.0, deadline - time.monotonic()))
            if pending:
                outbox[delivery.name] = pending
        with self._lock:
            self._save(outbox)
        if outbox:
            log.warning("alerts: %d undelivered notification(s) saved for the next start",
                        sum(map(len, outbox.values())))

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.cfg.tick_interval):
            try:
                self.tick()
            except Exception:  # a rule's bug must not end the time-based checks
                log.exception("alert tick failed")

    # --- input ----------------------------------------------------------------------------

    def on_message(self, msg: protocol.Message, tags, state=None) -> None:
        """Ingest listener: ``listener(msg, tags, state)``."""
        now = self.clock()
        with self._lock:
            if isinstance(msg, protocol.AgentStatus):
                self._evaluate_agent(self._on_agent(msg, now), now)
                return
            w = self._watch(tags)
            if w.newest_ts is not None and msg.ts < w.newest_ts:
                return  # a redelivered old message (as the fleet does): it must not re-open anything
            w.newest_ts, w.last_seen = msg.ts, now
            if isinstance(msg, protocol.Telemetry):
                if self._on_telemetry(w, msg, now):
                    self._evaluate_printer(w, now)
                return
            if isinstance(msg, protocol.Status):
                w.set_state(msg.state, now)
                w.state_text, w.error, w.agent = msg.state_text, msg.error, msg.agent or w.agent
                w.set_file(msg.file)
            elif isinstance(msg, protocol.Event):
                self._on_event(w, msg, now)
            self._evaluate_printer(w, now)

    def _watch(self, tags) -> PrinterWatch:
        w = self.printers.get(tags.printer)
        if w is None or w.site != tags.site:
            w = self.printers[tags.printer] = PrinterWatch(tags.printer, tags.site, tags.organisation, tags.county)
            w.newest_ts = self._newest_ts.get(tags.printer)
        return w

    def _on_telemetry(self, w: PrinterWatch, msg: protocol.Telemetry, now: float) -> bool:
        changed = w.set_state(msg.state, now)
        if changed:
            w.error = None  # belonged to the old state; the status message brings the new one
        w.state_text = msg.state_text
        w.set_file(msg.file)
        w.set_progress(msg.progress, now)
        if msg.temps:
            h = self.cfg.rules.heater_fault
            w.set_temps(msg.temps, now, h.tolerance, h.rise_min)
        return changed

    @staticmethod
    def _on_event(w: PrinterWatch, msg: protocol.Event, now: float) -> None:
        if msg.kind == "failed":
            w.failed = {"error": msg.error, "file": msg.file, "at": now}
            w.job_file = msg.file or w.job_file
        elif msg.kind == "done":
            w.done = {"file": msg.file, "duration": msg.duration, "id": msg.job_started or msg.ts}
        elif msg.kind == "started":
            w.job_file, w.done = msg.file, None

    def _on_agent(self, msg: protocol.AgentStatus, now: float) -> AgentWatch:
        a = self.agents.get(msg.agent)
        if a is None:
            a = self.agents[msg.agent] = AgentWatch(msg.agent, dropped=self.dropped.get(msg.agent))
        a.printers = list(msg.printers) or a.printers
        if a.dropped is not None and msg.dropped > a.dropped:
            a.dropped_from, a.dropped_at = a.dropped, now
        if a.dropped != msg.dropped:
            a.dropped = self.dropped[msg.agent] = msg.dropped
            self._save()
        if msg.state == "offline" and a.state != "offline":
            # The will's ts is the agent's connect time: the arrival time is when it was lost.
            a.offline_since = now
            a.printing_when_lost = [p for p in a.printers
                                    if p in self.printers and self.printers[p].state in ACTIVE_STATES]
        elif msg.state == "online":
            a.offline_since, a.printing_when_lost = None, []
        a.state = msg.state
        return a

    # --- evaluation -------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        with self._lock:
            for w in self.printers.values():
                self._evaluate_printer(w, now)
            for a in self.agents.values():
                self._evaluate_agent(a, now)
            self._due(now)

    def _evaluate_printer(self, w: PrinterWatch, now: float) -> None:
        for rule in PRINTER_RULES:
            self._apply(rule, w, w.printer, now)

    def _evaluate_agent(self, a: AgentWatch, now: float) -> None:
        for rule in AGENT_RULES:
            self._apply(rule, a, f"agent:{a.agent}", now)

    def _apply(self, rule, subject_watch, subject: str, now: float) -> None:
        settings = getattr(self.cfg.rules, rule.name)
        if not settings.enabled:
            return
        incident = self.open.get(f"{rule.name}/{subject}")
        if incident is not None and not incident.one_shot:
            if rule.clears(subject_watch, now, settings):
                self._resolve(incident, subject_watch, now, settings.recovery)
            return
        alert = rule.evaluate(subject_watch, now, settings)
        if alert is None:
            return
        if self._inhibited(rule.name, subject):
            return
        if rule.one_shot:
            self._one_shot(alert, now)
        else:
            self._open(alert, now)

    # --- incidents ----------------------------------------------------------------------------

    def _open(self, alert: Alert, now: float, one_shot: bool = False, key: str | None = None) -> Incident:
        self._fill_agent_place(alert)
        incident = Incident(f"{alert.rule}/{alert.subject}/{int(now * 1000)}", alert.rule, alert.subject,
                            alert.severity, alert.summary, alert.message, alert.details, now, one_shot=one_shot)
        incident.hold_until = self._hold_until(incident, now)
        self.open[key or incident.key] = incident
        self.metrics.inc("alerts_opened")
        self._point(incident, "firing", now, notified=incident.hold_until is None)
        if incident.hold_until is None:
            self._notify(incident, "firing", now)
        else:
            log.info("alert %s held until %s (quiet hours or cooldown)", incident.id, _iso(incident.hold_until))
        log.info("alert opened: %s: %s", incident.id, incident.message)
        self._save()
        return incident

    def _one_shot(self, alert: Alert, now: float) -> None:
        event_key = f"{alert.rule}/{alert.subject}/{alert.event}"
        if event_key in self.one_shots:
            return  # a redelivered event
        self.one_shots[event_key] = now
        incident = self._open(alert, now, one_shot=True, key=event_key)
        if incident.hold_until is None:
            del self.open[event_key]
            self._save()

    def _resolve(self, incident: Incident, watch, now: float, recovery: bool) -> None:
        del self.open[incident.key]
        self.metrics.inc("alerts_resolved")
        self._point(incident, "resolved", now, notified=incident.notified_at is not None and recovery)
        log.info("alert resolved: %s after %s", incident.id, _duration(now - incident.opened))
        if incident.notified_at is not None and recovery:
            now_state = getattr(watch, "state", "")
            self._notify(incident, "resolved", now, now_state=now_state)
        self._save()

    def _due(self, now: float) -> None:
        changed = False
        for key, incident in list(self.open.items()):
            if incident.hold_until is not None:
                if now >= incident.hold_until:
                    incident.hold_until = None
                    if self._inhibited(incident.rule, incident.subject):
                        log.info("alert %s stays silent: a related incident was notified", incident.id)
                    else:
                        self._notify(incident, "firing", now)
                    if incident.one_shot:
                        del self.open[key]
                    changed = True
            elif (incident.severity == "critical" and self.cfg.repeat_interval and incident.notified_at
                  and now - incident.notified_at >= self.cfg.repeat_interval):
                incident.repeats += 1
                self._point(incident, "repeat", now, notified=True)
                self._notify(incident, "repeat", now)
                changed = True
        if changed:
            self._save()

    def _inhibited(self, rule: str, subject: str) -> bool:
        return any(f"{other}/{subject}" in self.open for other in RULES[rule].inhibited_by)

    def _hold_until(self, incident: Incident, now: float) -> float | None:
        hold = None
        quiet = self.cfg.quiet_hours
        if quiet and RANK[incident.severity] <= RANK[quiet.max_severity]:
            hold = quiet_end(quiet, now)
        last = self.last_notified.get(incident.key)
        if not incident.one_shot and last is not None and now - last < self.cfg.cooldown:
            hold = max(hold or 0.0, last + self.cfg.cooldown)
        return hold

    def _fill_agent_place(self, alert: Alert) -> None:
        """Agent alerts are routed like their printers: borrow a printer's site and organisation."""
        agent = alert.details.get("agent")
        if alert.details.get("site") or agent not in self.agents:
            return
        for printer in self.agents[agent].printers:
            w = self.printers.get(printer)
            if w is not None:
                alert.details.update(site=w.site, organisation=w.organisation, county=w.county)
                return

    # --- output ---------------------------------------------------------------------------------

    def _notify(self, incident: Incident, kind: str, now: float, now_state: str = "") -> None:
        if kind != "resolved":
            incident.notified_at = now
            self.last_notified[incident.key] = now
        note = notification(incident, kind, now, now_state)
        receivers = self.receivers_for(incident)
        if not receivers:
            log.warning("alert %s matches no route: not sent", incident.id)
        for name in receivers:
            for delivery in self.deliveries.get(name, []):
                delivery.put(note)
        self.metrics.inc(f"alert_notifications_{kind}")

    def receivers_for(self, incident: Incident) -> list[str]:
        d = incident.details
        out: list[str] = []
        for route in self.cfg.routes:
            if route.matches(incident.severity, incident.rule, d.get("site") or "",
                             d.get("organisation") or "", d.get("county") or ""):
                out += [r for r in route.receivers if r not in out]
        return out

    def _point(self, incident: Incident, state: str, now: float, notified: bool) -> None:
        if self.write is None:
            return
        d = incident.details
        tags = {"agent": d.get("agent"), "county": d.get("county"), "organisation": d.get("organisation"),
                "printer": d.get("printer"), "rule": incident.rule, "severity": incident.severity,
                "site": d.get("site")}
        tag_text = "".join(f",{k}={lineproto.tag(v)}" for k, v in tags.items() if v)
        fields = [f"state={lineproto.string(state)}", f"message={lineproto.string(incident.message)}",
                  f"incident={lineproto.string(incident.id)}", f"notified={'true' if notified else 'false'}"]
        for key in ("file", "error"):
            if d.get(key):
                fields.append(f"{key}={lineproto.string(str(d[key]))}")
        self.write(f"alert{tag_text} {','.join(fields)} {int(now * 1000)}")

    def open_incidents(self) -> list[dict]:
        with self._lock:
            return [i.public() for i in sorted(self.open.values(), key=lambda i: i.opened)]

    def api_route(self) -> tuple[int, str, bytes]:
        """For the HTTP API: ``/api/alerts`` lists the open incidents."""
        return 200, "application/json", json.dumps({"open": self.open_incidents()}).encode()

    # --- persistence ------------------------------------------------------------------------------

    def _load(self) -> dict:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("alerts: cannot read %s (%s); starting with no open incidents", self._path, exc)
            return {}
        for key, raw in data.get("incidents", {}).items():
            self.open[key] = Incident(**raw)
        self.last_notified = data.get("last_notified", {})
        self.one_shots = data.get("one_shots", {})
        self.dropped = data.get("dropped", {})
        self._newest_ts = data.get("newest_ts", {})
        return data.get("outbox", {})

    def _save(self, outbox: dict | None = None) -> None:
        now = self.clock()
        self.last_notified = {k: t for k, t in self.last_notified.items() if now - t < self.cfg.cooldown}
        self.one_shots = {k: t for k, t in self.one_shots.items() if now - t < ONE_SHOT_MEMORY}
        data = {"incidents": {k: asdict(i) for k, i in self.open.items()}, "last_notified": self.last_notified,
                "one_shots": self.one_shots, "dropped": self.dropped, "outbox": outbox or {},
                "newest_ts": {**self._newest_ts, **{p: w.newest_ts for p, w in self.printers.items() if w.newest_ts}}}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self._path)
        except OSError as exc:
            log.error("alerts: cannot save open incidents to %s: %s", self._path, exc)


def _enabled(cfg: AlertsConfig, name: str) -> bool:
    return getattr(cfg.rules, name).enabled


def notification(incident: Incident, kind: str, now: float, now_state: str = "") -> dict:
    """What receivers get: the webhook's JSON, and title + text for Apprise."""
    d = incident.details
    severity = incident.severity.upper()
    if kind == "resolved":
        title = f"[RESOLVED] {incident.summary}"
        first = (f"Resolved after {_duration(now - incident.opened)}"
                 + (f": {d.get('printer') or d.get('agent')} is {now_state} again" if now_state else "") + ".")
    elif kind == "repeat":
        title = f"[{severity}, still open] {incident.summary}"
        first = f"Still open after {_duration(now - incident.opened)}: {incident.message}"
    else:
        title = f"[{severity}] {incident.summary}"
        first = incident.message
    lines = [first, ""]
    for label, key in (("Printer", "printer"), ("Agent", "agent"), ("Site", "site"), ("Organisation", "organisation"),
                       ("County", "county"), ("File", "file"), ("Error", "error"), ("Heater", "heater")):
        if d.get(key):
            lines.append(f"{label}: {d[key]}")
    lines += [f"Since: {_iso(incident.opened)}", f"Incident: {incident.id}"]
    return {
        "kind": kind, "incident": incident.id, "rule": incident.rule, "severity": incident.severity,
        "title": title, "summary": incident.summary, "message": incident.message, "text": "\n".join(lines),
        "printer": d.get("printer"), "agent": d.get("agent"), "site": d.get("site"),
        "organisation": d.get("organisation"), "county": d.get("county"), "file": d.get("file"),
        "error": d.get("error"), "opened_at": _iso(incident.opened), "at": _iso(now),
        "queued_at": now,
    }


def quiet_end(quiet, now: float) -> float | None:
    """The end of the quiet hours ``now`` falls in (epoch seconds), or None outside them."""
    local = datetime.fromtimestamp(now, quiet.zone)
    start = local.replace(hour=quiet.start_time.hour, minute=quiet.start_time.minute, second=0, microsecond=0)
    end = local.replace(hour=quiet.end_time.hour, minute=quiet.end_time.minute, second=0, microsecond=0)
    if start <= end:  # e.g. 12:00-14:00
        return end.timestamp() if start <= local < end else None
    if local >= start:  # e.g. 22:00-07:00, before midnight
        return (end + timedelta(days=1)).timestamp()
    return end.timestamp() if local < end else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
