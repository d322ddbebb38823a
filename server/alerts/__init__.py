"""Alerts: rules (pure functions of printer state and time), the engine (one notification per
incident, recovery, repeats, cooldown), routing (routes, quiet hours), the incident store
(persistence), notification texts and notifiers (Apprise, webhook)."""

from __future__ import annotations


def from_server_config(cfg, write=None, metrics=None, inventory=None):
    """An Engine for ``cfg.alerts`` (a ServerConfig), or None when no alerts are configured."""
    if not cfg.alerts:
        return None
    from server.alerts import config as alerts_config
    from server.alerts.engine import Engine

    alerts = alerts_config.load(cfg.alerts, cfg.state_dir)
    if not alerts.enabled:
        return None
    return Engine(alerts, write, metrics=metrics, inventory=inventory)
