"""``agent_dropping``: the agent's outbox overflowed while the broker was away: data is missing.
An event (its count rose): nothing "clears"."""

from __future__ import annotations

from server.alerts.rules.base import AgentRule, RuleSettings


class Settings(RuleSettings):
    severity: str = "warning"
    recovery: bool = False


class Rule(AgentRule):
    one_shot = True

    def evaluate(self, a, now, s):
        if a.dropped_from is None or a.dropped is None or a.dropped <= a.dropped_from:
            return None
        lost = a.dropped - a.dropped_from
        alert = self._alert(a, s.severity, f"Agent {a.agent} dropped data",
                            f"agent {a.agent} had to drop {lost} message(s) from its full outbox "
                            f"({a.dropped} since its first start): dashboards have gaps")
        alert.event = str(a.dropped)
        return alert
