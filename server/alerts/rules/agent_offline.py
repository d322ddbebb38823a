"""``agent_offline``: the agent's last-will (or its goodbye) said offline: all its printers are unseen."""

from __future__ import annotations

from server.alerts.rules.base import AgentRule, GracedSettings, minutes


class Settings(GracedSettings):
    grace: float = 60.0  # an agent restart (offline, online again) stays quiet


class Rule(AgentRule):
    def evaluate(self, a, now, s):
        if a.state != "offline" or a.offline_since is None:
            return None
        printing = bool(a.printing_when_lost)
        if now - a.offline_since < (s.printing_grace if printing else s.grace):
            return None
        printers = ", ".join(a.printers) or "no printers"
        if printing:
            return self._alert(a, s.printing_severity, f"Agent {a.agent} offline while printing",
                               f"agent {a.agent} went offline while {', '.join(a.printing_when_lost)} were printing; "
                               f"its printers ({printers}) are unseen")
        return self._alert(a, s.severity, f"Agent {a.agent} offline",
                           f"agent {a.agent} has been offline for {minutes(now - a.offline_since)}; "
                           f"its printers ({printers}) are unseen")
