"""Alert rules: each a pure function of what is known about one printer (or agent) and the time.

A rule answers two questions: ``evaluate`` — is there something to alert about now (an Alert,
or None)? — and ``clears`` — is an open incident of this rule over? Keeping the second one
explicit matters after a collector restart: the restored incident stays open until a fresh
message shows the printer well again, instead of "resolving" because nothing is known yet.

Dedup, cooldown, repeats, inhibition and routing are the engine's business, not the rules'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.alerts.watch import ACTIVE_STATES, CONNECTED_STATES, DOWN_STATES, AgentWatch, PrinterWatch


@dataclass(slots=True)
class Alert:
    rule: str
    subject: str  # "<site>/<printer>", or "agent:<id>"
    severity: str
    summary: str  # one line: "Print failed on vp-1 (lab)"
    message: str  # the detail an operator acts on
    details: dict = field(default_factory=dict)  # printer, site, organisation, county, agent, file, error
    event: str | None = None  # one-shot alerts: which event (dedup key); None for conditions


def _where(w: PrinterWatch) -> str:
    return f"{w.printer} ({w.site})"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class PrinterRule:
    name = ""
    one_shot = False  # an event, not a condition: nothing to resolve
    inhibited_by: tuple[str, ...] = ()  # open incidents of these rules on the same printer silence this one

    def evaluate(self, w: PrinterWatch, now: float, s) -> Alert | None:
        raise NotImplementedError

    def clears(self, w: PrinterWatch, now: float, s) -> bool:
        return w.state in CONNECTED_STATES and self.evaluate(w, now, s) is None

    def _alert(self, w: PrinterWatch, severity: str, summary: str, message: str, **extra) -> Alert:
        details = w.identity()
        details.update(extra)
        return Alert(self.name, w.subject, severity, summary, message, details)


_CONNECTION_TEXTS = frozenset({"offline", "closed", "offline after error", "error", "unreachable"})


class PrintFailed(PrinterRule):
    """A job ended as failed (the agent's 'failed' event), with the printer's error text."""

    name = "print_failed"
    inhibited_by = ("heater_fault",)  # a heater fault says more, and names the file too

    def evaluate(self, w, now, s):
        if not w.failed:
            return None
        error, file = w.failed.get("error") or "unknown error", w.failed.get("file")
        on = f" while printing {file}" if file else ""
        # A bare state text as the reason means OctoPrint lost or closed its printer connection.
        why = f"the printer connection closed ({error})" if error.lower() in _CONNECTION_TEXTS else error
        return self._alert(w, s.severity, f"Print failed on {_where(w)}",
                           f"{w.printer} at {w.site} failed{on}: {why}", file=file, error=error)


class PrinterDown(PrinterRule):
    """Offline, in error or unreachable: at once while printing, after a grace period while idle.

    Offline or error in the middle of a print ends the job, which print_failed reports at once;
    unreachable does not (OctoPrint may still be printing, unseen), so this rule reports it.
    """

    name = "printer_down"
    inhibited_by = ("print_failed", "heater_fault")

    def evaluate(self, w, now, s):
        if w.state not in DOWN_STATES or w.down_since is None:
            return None
        printing = w.down_while_printing and w.state == "unreachable"
        grace = s.printing_grace if printing else s.grace
        down_for = now - w.down_since
        if down_for < grace:
            return None
        what = {"unreachable": "unreachable", "offline": "offline", "error": "in error"}[w.state]
        reason = w.error or w.state_text or w.state
        if printing:
            file = w.job_file or w.file
            return self._alert(w, s.printing_severity, f"Printer {what} while printing: {_where(w)}",
                               f"{w.printer} at {w.site} became {what} while printing {file or 'a job'}: {reason}",
                               file=file, error=reason)
        return self._alert(w, s.severity, f"Printer {what}: {_where(w)}",
                           f"{w.printer} at {w.site} has been {what} for {_minutes(down_for)}: {reason}",
                           error=reason)

    def clears(self, w, now, s):
        return w.state in CONNECTED_STATES


class HeaterFault(PrinterRule):
    """The printer's own thermal error (MINTEMP, MAXTEMP, thermal runaway), a heater held far from
    its target after reaching it, or a heater that does not warm towards its target."""

    name = "heater_fault"

    def evaluate(self, w, now, s):
        text = " ".join(t for t in (w.error, w.state_text) if t)
        if w.state in ("error", "offline") and s.error_re and s.error_re.search(text):
            file = w.job_file if w.down_while_printing else None
            on = f" while printing {file}" if file else ""
            return self._alert(w, s.severity, f"Heater fault on {_where(w)}",
                               f"{w.printer} at {w.site} stopped with a thermal error{on}: {w.error or w.state_text}",
                               error=w.error or w.state_text, file=file)
        if w.state not in CONNECTED_STATES or not w.fresh(now):
            return None  # temperatures are stale
        for name, h in sorted(w.heaters.items()):
            if h.far_since is not None and now - h.far_since >= s.far_for:
                return self._alert(
                    w, s.severity, f"Heater fault on {_where(w)}: {name}",
                    f"{name} on {w.printer} at {w.site} is at {h.actual:.0f} °C, target {h.target:.0f} °C, "
                    f"off by more than {s.tolerance:.0f} °C for {_minutes(now - h.far_since)}",
                    heater=name, file=w.job_file if w.state in ACTIVE_STATES else None)
            if h.rise_at is not None and now - h.rise_at >= s.rise_window:
                return self._alert(
                    w, s.severity, f"Heater not heating on {_where(w)}: {name}",
                    f"{name} on {w.printer} at {w.site} is at {h.actual:.0f} °C with target {h.target:.0f} °C and "
                    f"has not gained {s.rise_min:g} °C in {_minutes(now - h.rise_at)} (thermal-runaway hint)",
                    heater=name, file=w.job_file if w.state in ACTIVE_STATES else None)
        return None


class JobStalled(PrinterRule):
    """Printing, but the progress has not moved for too long."""

    name = "job_stalled"

    def evaluate(self, w, now, s):
        if w.state != "printing" or w.progress_since is None or now - w.progress_since < s.after:
            return None
        if not w.fresh(now):
            return None  # no news at all is agent_offline's business, not a stalled job
        progress = f"{w.progress:.1f} %" if w.progress is not None else "unknown"
        return self._alert(w, s.severity, f"Print stalled on {_where(w)}",
                           f"{w.printer} at {w.site} has been printing {w.job_file or w.file or 'a job'} "
                           f"with progress stuck at {progress} for {_minutes(now - w.progress_since)}",
                           file=w.job_file or w.file)

    def clears(self, w, now, s):
        return w.state != "unknown" and w.fresh(now) and self.evaluate(w, now, s) is None


class PrintFinished(PrinterRule):
    name = "print_finished"
    one_shot = True

    def evaluate(self, w, now, s):
        if not w.done:
            return None
        file = w.done.get("file")
        alert = self._alert(w, s.severity, f"Print finished on {_where(w)}",
                            f"{w.printer} at {w.site} finished {file or 'a job'}"
                            + (f" in {_minutes(w.done['duration'])}" if w.done.get("duration") else ""),
                            file=file)
        alert.event = str(w.done.get("id"))
        return alert


# --- agents ---------------------------------------------------------------------------------


class AgentRule:
    name = ""
    one_shot = False
    inhibited_by: tuple[str, ...] = ()

    def evaluate(self, a: AgentWatch, now: float, s) -> Alert | None:
        raise NotImplementedError

    def clears(self, a: AgentWatch, now: float, s) -> bool:
        return a.state == "online"


class AgentOffline(AgentRule):
    """The agent's last-will (or its goodbye) said offline: all its printers are unseen."""

    name = "agent_offline"

    def evaluate(self, a, now, s):
        if a.state != "offline" or a.offline_since is None:
            return None
        printing = bool(a.printing_when_lost)
        if now - a.offline_since < (s.printing_grace if printing else s.grace):
            return None
        printers = ", ".join(a.printers) or "no printers"
        if printing:
            return Alert(self.name, f"agent:{a.agent}", s.printing_severity,
                         f"Agent {a.agent} offline while printing",
                         f"agent {a.agent} went offline while {', '.join(a.printing_when_lost)} were printing; "
                         f"its printers ({printers}) are unseen", {"agent": a.agent})
        return Alert(self.name, f"agent:{a.agent}", s.severity, f"Agent {a.agent} offline",
                     f"agent {a.agent} has been offline for {_minutes(now - a.offline_since)}; "
                     f"its printers ({printers}) are unseen", {"agent": a.agent})


class AgentDropping(AgentRule):
    """The agent's outbox overflowed while the broker was away: data is missing."""

    name = "agent_dropping"
    one_shot = True

    def evaluate(self, a, now, s):
        if a.dropped_from is None or a.dropped is None or a.dropped <= a.dropped_from:
            return None
        lost = a.dropped - a.dropped_from
        alert = Alert(self.name, f"agent:{a.agent}", s.severity, f"Agent {a.agent} dropped data",
                      f"agent {a.agent} had to drop {lost} message(s) from its full outbox "
                      f"({a.dropped} since its first start): dashboards have gaps", {"agent": a.agent})
        alert.event = str(a.dropped)
        return alert


# The order matters: within one evaluation an inhibiting rule opens before the rules it silences.
PRINTER_RULES: tuple[PrinterRule, ...] = (HeaterFault(), PrintFailed(), PrinterDown(), JobStalled(), PrintFinished())
AGENT_RULES: tuple[AgentRule, ...] = (AgentOffline(), AgentDropping())

