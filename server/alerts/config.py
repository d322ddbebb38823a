"""The ``[alerts]`` table of the collector's config, validated: every error names the key and the fix.

```toml
[alerts]
repeat_interval = 14400          # re-send an unresolved critical incident every 4 h
cooldown = 300                   # a flapping printer notifies at most once per 5 min per rule

[alerts.quiet_hours]             # info/warning alerts wait until the morning
start = "22:00"
end = "07:00"
timezone = "Europe/Stockholm"

[alerts.receivers.ops]
type = "apprise"
urls_file = "/etc/printfarm/apprise-urls"   # one Apprise URL a line: they hold passwords

[alerts.receivers.umu-hook]
type = "webhook"
url = "https://example.org/hooks/printfarm"

[[alerts.routes]]                # every route that matches gets the alert
organisations = ["Umeå universitet"]
receivers = ["umu-hook"]

[[alerts.routes]]                # no match keys: a catch-all
min_severity = "warning"
receivers = ["ops"]

[alerts.rules.printer_down]
grace = 120
```
"""

from __future__ import annotations

from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.configkit import (
    ConfigError, Invalid, Secret, Section, check_entries, check_http_url, check_id, check_range, convert, read_secret,
    read_secret_lines,
)
from server.alerts import rules as alert_rules
from server.alerts.severity import RANK, SEVERITIES, check_severity

# --- receivers and routes -------------------------------------------------------------------


class Receiver(Section):
    type: str
    # apprise: URLs hold credentials, so prefer urls_file / urls_env (one URL a line).
    urls: list[str] = []
    urls_file: str | None = None
    urls_env: str | None = None
    # webhook: plain JSON POST
    url: str | None = None
    url_file: str | None = None
    url_env: str | None = None
    headers: dict[str, str] = {}
    timeout: float = 10.0
    retry_min: float = 1.0  # seconds before the first retry; doubles up to retry_max
    retry_max: float = 60.0
    give_up_after: float = 86400.0  # a notification older than this is dropped (counted, logged)
    queue_size: int = 10000

    def __post_init__(self):
        check_range("timeout", self.timeout, 0.1, 300)
        check_range("retry_min", self.retry_min, 0.01, 3600)
        check_range("retry_max", self.retry_max, self.retry_min, 86400)
        check_range("give_up_after", self.give_up_after, 1, 30 * 86400)
        check_range("queue_size", self.queue_size, 1, 1_000_000)
        if self.type == "apprise":
            self.secret_urls = self._apprise_urls()
        elif self.type == "webhook":
            self.secret_urls = [self._webhook_url()]
        else:
            raise Invalid("type", f"{self.type!r} is not a receiver type", "use 'apprise' or 'webhook'")

    def _apprise_urls(self) -> list[Secret]:
        urls = list(self.urls)
        if self.urls_file or self.urls_env:
            urls += read_secret_lines("urls", self.urls_file, self.urls_env)
        if not urls:
            raise Invalid("urls", "no Apprise URL given", "set urls = [...], urls_file or urls_env")
        for i, url in enumerate(urls):
            if "://" not in url:  # never echo the URL: it may hold a password
                raise Invalid(f"urls[{i}]", "is not a URL", "write it like 'mailto://user:pass@example.org'")
            if not _apprise_accepts(url):
                raise Invalid(f"urls[{i}]", "Apprise cannot use this URL (unknown scheme or missing parts)",
                              "check it against Apprise's page for that service; its log line says what is missing")
        return [Secret(u) for u in urls]

    def _webhook_url(self) -> Secret:
        url = self.url
        if self.url_file or self.url_env:
            url = read_secret("url", self.url_file, self.url_env)
        if not url:
            raise Invalid("url", "no webhook URL given", "set url, url_file or url_env")
        secret = bool(self.url_file or self.url_env)  # then never echoed: the URL may be the secret
        check_http_url("url_file" if self.url_file else ("url_env" if self.url_env else "url"), url, secret)
        return Secret(url)


def _apprise_accepts(url: str) -> bool:
    import apprise  # imported late: ~65 ms, paid only by configs with an apprise receiver

    return bool(apprise.Apprise().add(url))


class Route(Section):
    receivers: list[str]
    sites: list[str] = []
    organisations: list[str] = []
    counties: list[str] = []
    rules: list[str] = []
    min_severity: str = "info"

    def __post_init__(self):
        check_severity("min_severity", self.min_severity)
        for i, site in enumerate(self.sites):
            check_id(f"sites[{i}]", site)
        if not self.receivers:
            raise Invalid("receivers", "is empty", "name at least one receiver from [alerts.receivers]")

    def matches(self, severity: str, rule: str, site: str, organisation: str, county: str) -> bool:
        return (RANK[severity] >= RANK[self.min_severity]
                and (not self.sites or site in self.sites)
                and (not self.organisations or organisation in self.organisations)
                and (not self.counties or county in self.counties)
                and (not self.rules or rule in self.rules))


class QuietHours(Section):
    start: str
    end: str
    timezone: str = "UTC"
    max_severity: str = "warning"  # alerts up to this severity wait until the quiet hours end

    def __post_init__(self):
        self.start_time = _clock_time("start", self.start)
        self.end_time = _clock_time("end", self.end)
        check_severity("max_severity", self.max_severity)
        if self.max_severity == "critical":
            raise Invalid("max_severity", "critical alerts must never wait", "use info or warning")
        try:
            self.zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid("timezone", f"{self.timezone!r} is not a known time zone",
                          "use an IANA name like 'Europe/Stockholm'") from None


def _clock_time(key: str, value: str) -> dtime:
    try:
        hours, minutes = value.split(":")
        return dtime(int(hours), int(minutes))
    except ValueError:
        raise Invalid(key, f"{value!r} is not a time of day", "write it as HH:MM, like '22:00'") from None


class AlertsConfig(Section):
    enabled: bool = True
    receivers: dict[str, Receiver] = {}
    routes: list[Route] = []
    # [alerts.rules.<name>], one table per rule in the registry (server/alerts/rules/__init__.py);
    # __post_init__ turns it into a struct of each rule's validated Settings.
    rules: dict[str, object] = {}
    quiet_hours: QuietHours | None = None
    repeat_interval: float = 4 * 3600.0  # re-notify an unresolved critical incident; 0 = never
    cooldown: float = 300.0  # after notifying, the same rule on the same printer waits this long
    tick_interval: float = 1.0  # how often time-based rules (grace, stalls, heaters) are checked
    state_file: str = ""  # open incidents; default <state_dir>/alerts/incidents.json

    def __post_init__(self):
        self.rules = _rule_settings(self.rules)  # first: as when it was a fixed struct, decoded before these checks
        check_range("repeat_interval", self.repeat_interval, 0, 30 * 86400)
        check_range("cooldown", self.cooldown, 0, 86400)
        check_range("tick_interval", self.tick_interval, 0.05, 60)
        for name in self.receivers:
            check_id(f"receivers.{name}", name)
        for i, route in enumerate(self.routes):
            for name in route.receivers:
                if name not in self.receivers:
                    raise Invalid(f"routes[{i}].receivers", f"receiver {name!r} is not defined",
                                  f"add an [alerts.receivers.{name}] table or correct the name")
        if self.receivers and not self.routes:
            # No routes: everything goes everywhere, the least surprising default.
            self.routes = [Route(receivers=list(self.receivers))]


def _rule_settings(raw: dict):
    """A struct with each registered rule's Settings; errors name ``rules.<name>.<key>``."""
    try:
        return convert(raw, alert_rules.settings_struct())
    except ConfigError as exc:
        raise Invalid(f"rules.{exc.key}", exc.problem, exc.fix) from None


def load(raw: dict, state_dir: str = "", source: str = "") -> AlertsConfig:
    """Validate the raw ``[alerts]`` table; errors name keys as ``alerts.<key>``."""
    check_entries(raw, "receivers", Receiver, source, prefix="alerts.")
    try:
        cfg = convert(raw or {}, AlertsConfig, source)
    except ConfigError as exc:
        raise ConfigError(f"alerts.{exc.key}" if exc.key != "(top)" else "alerts", exc.problem, exc.fix, source) from None
    if not cfg.state_file:
        cfg.state_file = str(Path(state_dir or ".") / "alerts" / "incidents.json")
    return cfg


__all__ = ["AlertsConfig", "ConfigError", "load", "SEVERITIES", "RANK"]
