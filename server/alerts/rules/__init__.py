"""Alert rules, one module each: a ``Settings`` struct (its ``[alerts.rules.<name>]`` table) and a
``Rule`` (pure functions of what is known about one printer or agent, and the time; base.py).

A new rule is a new module here plus one line in ``RULES``: the config table, its validation,
the engine's evaluation and routing by rule name all follow from this map.
"""

from __future__ import annotations

from types import ModuleType

import msgspec

from common.configkit import Section
from server.alerts.rules import (
    agent_dropping, agent_offline, heater_fault, job_stalled, print_failed, print_finished, printer_down,
    service_due,
)
from server.alerts.rules.base import AgentRule, Alert, PrinterRule, RuleSettings

# config name -> rule module. Rules run in this order, except that a rule always runs after the
# rules that inhibit it (see evaluation_order), so a new line can go anywhere.
RULES: dict[str, ModuleType] = {
    "heater_fault": heater_fault,
    "print_failed": print_failed,
    "printer_down": printer_down,
    "job_stalled": job_stalled,
    "print_finished": print_finished,
    "agent_offline": agent_offline,
    "agent_dropping": agent_dropping,
    "service_due": service_due,
}


def settings_struct() -> type[Section]:
    """The ``[alerts.rules]`` table: one sub-table per registered rule, each with its defaults.

    Built when a config is loaded (not at import), from the map as it is then.
    """
    fields = [(name, module.Settings, msgspec.field(default_factory=module.Settings)) for name, module in RULES.items()]
    return msgspec.defstruct("Rules", fields, bases=(Section,))


def evaluation_order() -> list[PrinterRule | AgentRule]:
    """One instance of each registered rule, in the map's order moved only as far as inhibition needs.

    The order matters for inhibition alone: within one evaluation of a printer, an inhibiting rule
    must open its incident before the rules it silences look (a heater fault before the print
    failure it caused, both before "printer down"), or both would notify.
    """
    order: list[PrinterRule | AgentRule] = []

    def place(name: str, path: tuple[str, ...]) -> None:
        if name not in RULES:
            raise KeyError(f"alert rule {path[-1]!r} is inhibited by {name!r}, which is not in RULES")
        if name in path:
            raise ValueError(f"alert rules inhibit each other in a circle: {' -> '.join(path + (name,))}")
        if any(rule.name == name for rule in order):
            return
        rule = RULES[name].Rule(name)
        for other in rule.inhibited_by:
            place(other, path + (name,))
        order.append(rule)

    for name in RULES:
        place(name, ())
    return order


__all__ = ["RULES", "AgentRule", "Alert", "PrinterRule", "RuleSettings", "evaluation_order", "settings_struct"]
