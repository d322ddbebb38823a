"""The alert engine: rules in, one notification per incident out.

- An incident opens when a rule first reports an alert for a printer (or agent); while it is
  open, that rule's further alerts are the same incident and send nothing. It closes when the
  rule says it ``clears``, with one recovery notice.
- Unresolved critical incidents are re-sent every ``repeat_interval``; after a notification,
  the same rule on the same subject waits ``cooldown`` before notifying again (a flapping
  printer notifies once). One-shot alerts (events: a drop report, a finished print) are held
  to the same pace: events arriving within the cooldown gather in the one waiting notice.
- Printers are known by (site, printer). What an agent says about its printers counts only as
  far as the inventory (and its ``[agents]`` table) and the printers' own status confirm it.

Who gets what and when: routing.py; the file that keeps open incidents: incidents.py;
notification texts: notification.py; printer-supplied text is made safe for chat where it
enters (common.text.chat: no control characters, links, markup or pings). ``on_message`` runs on the ingestion thread and only does bookkeeping plus, on a
state change, the rules of that one printer; sending happens on the notifiers' threads, saving
on the store's thread, and time-based rules (grace periods, stalls, heaters) on the tick thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import msgspec

from common import protocol
from common.text import chat as clean
from server import lineproto
from server.alerts.config import AlertsConfig
from server.alerts.incidents import Incident, IncidentStore
from server.alerts.notification import duration, iso, notification
from server.alerts.notifiers import Delivery, Sender, make_senders
from server.alerts.routing import quiet_hold, receivers_for
from server.alerts import rules as alert_rules
from server.alerts.rules import Alert, PrinterRule
from server.alerts.watch import ACTIVE_STATES, AgentWatch, PrinterWatch
from server.inventory import Inventory
from server.metrics import Metrics

log = logging.getLogger(__name__)

ONE_SHOT_MEMORY = 2 * 86400.0  # how long a one-shot event is remembered against redelivery
ONE_SHOT_CAP = 1000  # ... and how many at most (the oldest are forgotten first)


class Engine:
    def __init__(self, cfg: AlertsConfig, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 sender_factory: Callable[[str, object], list[Sender]] = make_senders,
                 metrics: Metrics | None = None, inventory: Inventory | None = None,
                 save_interval: float = 1.0):
        self.cfg, self.write, self.clock = cfg, write, clock
        rules = alert_rules.evaluation_order()
        self.rules = {rule.name: rule for rule in rules}
        self.printer_rules = [rule for rule in rules if isinstance(rule, PrinterRule)]
        self.agent_rules = [rule for rule in rules if not isinstance(rule, PrinterRule)]
        self.settings = msgspec.structs.asdict(cfg.rules)  # rule name -> its Settings
        self.metrics = metrics or Metrics()
        self.inventory = inventory or Inventory()
        self.printers: dict[tuple[str, str], PrinterWatch] = {}
        self.agents: dict[str, AgentWatch] = {}
        self.open: dict[str, Incident] = {}
        self.last_notified: dict[str, float] = {}
        self.one_shots: dict[str, float] = {}
        self.dropped: dict[str, int] = {}  # agents' drop counts already seen
        self._newest_ts: dict[str, int] = {}  # "site/printer" -> newest ts of the last run: older ones are old news
        self._lock = threading.RLock()
        self.deliveries: dict[str, list[Delivery]] = {
            name: [Delivery(sender, r.retry_min, r.retry_max, r.give_up_after, r.queue_size, clock, self.metrics)
                   for sender in sender_factory(name, r)]
            for name, r in cfg.receivers.items()
        }
        # gate(send, now, what): with several collectors, the one that lets notifications out
        # (server/nats_lease.py); None: this one sends.
        self.gate: Callable[[Callable[[], None], float, str], None] | None = None
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="alert-tick", daemon=True)
        self.store = IncidentStore(cfg.state_file, self._snapshot, save_interval)
        self._outbox = self._restore(self.store.load())

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        for targets in self.deliveries.values():
            for delivery in targets:
                for note in self._outbox.pop(delivery.name, []):
                    delivery.put(note)
                delivery.start()
        self.store.start()
        self._ticker.start()
        log.info("alerts: %d rule(s) on, %d receiver(s), %d open incident(s) restored",
                 sum(s.enabled for s in self.settings.values()),
                 len(self.deliveries), len(self.open))

    stop_stage = "before_writer"  # its last points are flushed too (server/subsystems.py)

    def health(self) -> dict:
        return {"open_incidents": len(self.open)}

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout)
        outbox = self._stop_deliveries(timeout)
        self.store.stop(outbox=outbox)
        if outbox:
            log.warning("alerts: %d undelivered notification(s) saved for the next start",
                        sum(map(len, outbox.values())))

    def _stop_deliveries(self, timeout: float) -> dict[str, list[dict]]:
        outbox = {}
        deliveries = [d for targets in self.deliveries.values() for d in targets]
        for delivery in deliveries:  # all at once: hung receivers share one timeout
            delivery.stop(0)
        deadline = time.monotonic() + timeout
        for delivery in deliveries:
            pending = delivery.stop(max(0.0, deadline - time.monotonic()))
            if pending:
                outbox[delivery.name] = pending
        return outbox

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
            if w.stale(msg):
                return  # a redelivered old message (as the fleet does): it must not re-open anything
            w.newest_ts, w.last_seen = max(msg.ts, w.newest_ts or msg.ts), now
            if isinstance(msg, protocol.Telemetry):
                if self._on_telemetry(w, msg, now):
                    self._evaluate_printer(w, now)
                return
            if isinstance(msg, protocol.Status):
                self._on_status(w, msg, now)
            elif isinstance(msg, protocol.Event):
                self._on_event(w, msg, now)
            self._evaluate_printer(w, now)

    def _watch(self, tags) -> PrinterWatch:
        key = (tags.site, tags.printer)
        w = self.printers.get(key)
        if w is None:
            w = self.printers[key] = PrinterWatch(tags.printer, tags.site, tags.organisation, tags.county)
            w.newest_ts = self._newest_ts.get(w.subject)
        return w

    def _on_telemetry(self, w: PrinterWatch, msg: protocol.Telemetry, now: float) -> bool:
        changed = w.set_state(msg.state, now)
        if changed:
            w.error = None  # belonged to the old state; the status message brings the new one
        w.state_text = clean(msg.state_text)
        w.set_file(clean(msg.file))
        w.set_progress(msg.progress, now)
        if msg.temps:
            h = self.settings["heater_fault"]
            w.set_temps(msg.temps, now, h.tolerance, h.rise_min)
        return changed

    @staticmethod
    def _on_status(w: PrinterWatch, msg: protocol.Status, now: float) -> None:
        w.set_state(msg.state, now)
        w.state_text, w.error, w.agent = clean(msg.state_text), clean(msg.error), msg.agent or w.agent
        w.set_file(clean(msg.file))

    @staticmethod
    def _on_event(w: PrinterWatch, msg: protocol.Event, now: float) -> None:
        file = clean(msg.file)
        if msg.kind == "failed":
            w.failed = {"error": clean(msg.error), "file": file, "at": now}
            w.job_file = file or w.job_file
        elif msg.kind == "done":
            w.done = {"file": file, "duration": msg.duration, "id": msg.job_started or msg.ts}
        elif msg.kind == "started":
            w.job_file, w.done = file, None

    def _on_agent(self, msg: protocol.AgentStatus, now: float) -> AgentWatch:
        a = self.agents.get(msg.agent)
        if a is None:
            a = self.agents[msg.agent] = AgentWatch(msg.agent, dropped=self.dropped.get(msg.agent))
        a.claimed = list(msg.printers) or a.claimed
        a.printers = [w.printer for w in self._confirmed(a)]
        if a.dropped is not None and msg.dropped > a.dropped:
            a.dropped_from, a.dropped_at = a.dropped, now
        if a.dropped != msg.dropped:
            a.dropped = self.dropped[msg.agent] = msg.dropped
            self.store.changed()
        if msg.state == "offline" and a.state != "offline":
            # The will's ts is the agent's connect time: the arrival time is when it was lost.
            a.offline_since = now
            a.printing_when_lost = [w.printer for w in self._confirmed(a) if w.state in ACTIVE_STATES]
        elif msg.state == "online":
            a.offline_since, a.printing_when_lost = None, []
        a.state = msg.state
        return a

    def _confirmed(self, a: AgentWatch) -> list[PrinterWatch]:
        """The printers ``a`` claims that the inventory grants it and whose own status (on topics
        only their agent may publish to) names no other agent."""
        out = []
        for key in self.inventory.agent_printers(a.agent, a.claimed):
            w = self.printers.get(key)
            if w is not None and w.agent in (None, a.agent):
                out.append(w)
        return out

    def service_checked(self, found: list) -> None:
        """The maintenance check's ServiceStates (server/maintenance_watch.py), for service_due.
        A listed printer not heard from since the start gets a watch when it is due or has an
        open incident (a printer that is off still needs its service)."""
        now = self.clock()
        with self._lock:
            for state in found:
                w = self.printers.get((state.site, state.printer))
                if w is None:
                    if not state.due and f"service_due/{state.site}/{state.printer}" not in self.open:
                        continue
                    w = self._watch(self.inventory.tags(state.site, state.printer))
                w.service = state
                self._apply(self.rules["service_due"], w, w.subject, now)

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
        for rule in self.printer_rules:
            self._apply(rule, w, w.subject, now)

    def _evaluate_agent(self, a: AgentWatch, now: float) -> None:
        for rule in self.agent_rules:
            self._apply(rule, a, f"agent:{a.agent}", now)

    def _apply(self, rule, subject_watch, subject: str, now: float) -> None:
        settings = self.settings[rule.name]
        if not settings.enabled:
            return
        incident = self.open.get(f"{rule.name}/{subject}")
        if incident is not None and not incident.one_shot:
            if rule.clears(subject_watch, now, settings):
                self._resolve(incident, subject_watch, now, settings.recovery)
            return
        alert = rule.evaluate(subject_watch, now, settings)
        if alert is None or self._inhibited(rule.name, subject):
            return
        if rule.one_shot:
            self._one_shot(alert, now)
        else:
            self._open(alert, now)

    # --- incidents ----------------------------------------------------------------------------

    def _open(self, alert: Alert, now: float, one_shot: bool = False) -> Incident:
        self._fill_agent_place(alert)
        incident = Incident(f"{alert.rule}/{alert.subject}/{int(now * 1000)}", alert.rule, alert.subject,
                            alert.severity, alert.summary, alert.message, alert.details, now, one_shot=one_shot)
        incident.hold_until = self._hold_until(incident, now)
        self.open[incident.key] = incident
        self.metrics.inc("alerts_opened")
        self._point(incident, "firing", now, notified=incident.hold_until is None)
        if incident.hold_until is None:
            self._notify(incident, "firing", now)
        else:
            log.info("alert %s held until %s (quiet hours or cooldown)", incident.id, iso(incident.hold_until))
        log.info("alert opened: %s: %s", incident.id, incident.message)
        self.store.changed()
        return incident

    def _one_shot(self, alert: Alert, now: float) -> None:
        event_key = f"{alert.rule}/{alert.subject}/{alert.event}"
        if event_key in self.one_shots:
            return  # a redelivered event
        self._remember(event_key, now)
        waiting = self.open.get(f"{alert.rule}/{alert.subject}")
        if waiting is not None:  # one notice per cooldown: the waiting one carries the newest event
            self._fill_agent_place(alert)
            waiting.summary, waiting.message, waiting.details = alert.summary, alert.message, alert.details
            waiting.events += 1
            self.store.changed()
            return
        incident = self._open(alert, now, one_shot=True)
        if incident.hold_until is None:
            del self.open[incident.key]

    def _remember(self, event_key: str, now: float) -> None:
        self.one_shots[event_key] = now
        if len(self.one_shots) > ONE_SHOT_CAP:
            del self.one_shots[next(iter(self.one_shots))]

    def _resolve(self, incident: Incident, watch, now: float, recovery: bool) -> None:
        del self.open[incident.key]
        self.metrics.inc("alerts_resolved")
        self._point(incident, "resolved", now, notified=incident.notified_at is not None and recovery)
        log.info("alert resolved: %s after %s", incident.id, duration(now - incident.opened))
        if incident.notified_at is not None and recovery:
            self._notify(incident, "resolved", now, now_state=getattr(watch, "state", ""))
        self.store.changed()

    def _due(self, now: float) -> None:
        for key, incident in list(self.open.items()):
            if incident.hold_until is not None:
                if now >= incident.hold_until:
                    self._release(key, incident, now)
            elif (incident.severity == "critical" and self.cfg.repeat_interval and incident.notified_at
                  and now - incident.notified_at >= self.cfg.repeat_interval):
                incident.repeats += 1
                self._point(incident, "repeat", now, notified=True)
                self._notify(incident, "repeat", now)
                self.store.changed()

    def _release(self, key: str, incident: Incident, now: float) -> None:
        """A held incident's time has come: notify, unless a related incident already did."""
        incident.hold_until = None
        if self._inhibited(incident.rule, incident.subject):
            log.info("alert %s stays silent: a related incident was notified", incident.id)
        else:
            self._notify(incident, "firing", now)
        if incident.one_shot:
            del self.open[key]
        self.store.changed()

    def _inhibited(self, rule: str, subject: str) -> bool:
        return any(f"{other}/{subject}" in self.open for other in self.rules[rule].inhibited_by)

    def _hold_until(self, incident: Incident, now: float) -> float | None:
        hold = quiet_hold(self.cfg.quiet_hours, incident.severity, now)
        last = self.last_notified.get(incident.key)
        if last is not None and now - last < self.cfg.cooldown:
            hold = max(hold or 0.0, last + self.cfg.cooldown)
        return hold

    def _fill_agent_place(self, alert: Alert) -> None:
        """Agent alerts are routed like their printers: borrow a confirmed printer's place."""
        agent = alert.details.get("agent")
        if alert.details.get("site") or agent not in self.agents:
            return
        for w in self._confirmed(self.agents[agent]):
            alert.details.update(site=w.site, organisation=w.organisation, county=w.county)
            return

    # --- output ---------------------------------------------------------------------------------

    def _notify(self, incident: Incident, kind: str, now: float, now_state: str = "") -> None:
        if kind != "resolved":
            incident.notified_at = now
            self.last_notified[incident.key] = now
        note = notification(incident, kind, now, now_state)
        receivers = receivers_for(self.cfg.routes, incident.severity, incident.rule, incident.details)
        if not receivers:
            log.warning("alert %s matches no route: not sent", incident.id)

        def send() -> None:
            for name in receivers:
                for delivery in self.deliveries.get(name, []):
                    delivery.put(note)
        if self.gate is None:
            send()
        else:
            self.gate(send, now, f"{incident.key}/{kind}")
        incident.events = 1
        self.metrics.inc(f"alert_notifications_{kind}")

    def _point(self, incident: Incident, state: str, now: float, notified: bool) -> None:
        if self.write is None:
            return
        d = incident.details
        tags = {"agent": d.get("agent"), "county": d.get("county"), "organisation": d.get("organisation"),
                "printer": d.get("printer"), "rule": incident.rule, "severity": incident.severity,
                "site": d.get("site")}
        fields = [("state", state), ("message", incident.message), ("incident", incident.id),
                  ("notified", notified), ("file", d.get("file") or None), ("error", d.get("error") or None)]
        self.write(lineproto.point("alert", tags, fields, int(now * 1000)))

    def open_incidents(self) -> list[dict]:
        with self._lock:
            return [i.public() for i in sorted(self.open.values(), key=lambda i: i.opened)]

    def api_route(self, request) -> tuple[int, str, bytes]:
        """For the HTTP API: ``/api/alerts`` lists the open incidents the asker may see (server/access.py)."""
        shown = request.access.alerts(self.open_incidents(), request.viewer)
        return 200, "application/json", json.dumps({"open": shown}).encode()

    # --- what the store keeps -----------------------------------------------------------------

    def _snapshot(self) -> dict:
        with self._lock:
            now = self.clock()
            self.last_notified = {k: t for k, t in self.last_notified.items() if now - t < self.cfg.cooldown}
            self.one_shots = {k: t for k, t in self.one_shots.items() if now - t < ONE_SHOT_MEMORY}
            newest = {**self._newest_ts, **{w.subject: w.newest_ts for w in self.printers.values() if w.newest_ts}}
            return {"incidents": {k: i.saved() for k, i in self.open.items()}, "last_notified": self.last_notified,
                    "one_shots": self.one_shots, "dropped": self.dropped, "newest_ts": newest, "outbox": {}}

    def _restore(self, data: dict) -> dict:
        """Take over what the store kept; returns the undelivered notifications."""
        for raw in data.get("incidents", {}).values():
            try:
                incident = Incident.from_saved(raw)
            except TypeError as exc:
                log.error("alerts: skipping a saved incident that does not fit (%s)", exc)
                continue
            self.open[incident.key] = incident
        self.last_notified = data.get("last_notified", {})
        self.one_shots = data.get("one_shots", {})
        self.dropped = data.get("dropped", {})
        # Before printers were known by site and ID, these were keyed by ID alone: let them go.
        self._newest_ts = {k: ts for k, ts in data.get("newest_ts", {}).items() if "/" in k}
        return data.get("outbox", {})
