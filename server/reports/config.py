"""The ``[reports]`` table of the server config.

```toml
[reports]
out_dir = "/var/lib/printfarm-server/reports"
formats = ["xlsx", "pdf", "csv", "summary"]
lang = "sv"                    # sv | en
network_name = "ACES"          # optional: on the one-page summary
tz = "Europe/Stockholm"
silence_after = 120            # s: for a period still running, data this recent counts as still reporting

[reports.schedule]
enabled = true
cron = "0 6 1 * *"             # crontab fields: 06:00 on the 1st of every month
period = "month"               # the previous month | quarter | year

[reports.mail]                 # optional: mail the files after each scheduled run
host = "smtp.example.org"
port = 587
starttls = true                # STARTTLS; or smtps = true for TLS from the start (port 465)
# ca_file = "/etc/printfarm/smtp-ca.crt"   # a private CA; by default the system's CAs verify the server
username = "printfarm"
password_file = "/etc/printfarm/smtp-password"
sender = "printfarm@example.org"
to = ["staff@example.org"]
```
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from apscheduler.triggers.cron import CronTrigger

from common.configkit import Invalid, Secret, Section, check_range, convert, read_secret
from server.reports import periods
from server.reports.labels import LANGS

FORMATS = ("xlsx", "pdf", "csv", "summary")  # summary: the one-page PDF for the funder's progress report


class ScheduleConfig(Section):
    enabled: bool = False
    cron: str = "0 6 1 * *"
    period: str = "month"

    def __post_init__(self):
        try:
            CronTrigger.from_crontab(self.cron)
        except ValueError as exc:
            raise Invalid("cron", f"{self.cron!r} is not a crontab expression ({exc})",
                          "write five fields: minute hour day month weekday, e.g. '0 6 1 * *'") from None
        if self.period not in ("month", "quarter", "year"):
            raise Invalid("period", f"{self.period!r} is not a period kind", "use month, quarter or year")


class MailConfig(Section):
    host: str
    sender: str
    to: list[str]
    port: int = 587
    starttls: bool = True  # upgrade the plain connection with STARTTLS
    smtps: bool = False  # TLS from the first byte (usually port 465); starttls is then moot
    ca_file: str | None = None  # CA bundle that signed the server's certificate (default: the system's)
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    timeout: float = 30.0

    def __post_init__(self):
        check_range("port", self.port, 1, 65535)
        if not self.to or not all("@" in a for a in self.to):
            raise Invalid("to", f"{self.to!r} has no valid address", "list addresses like ['staff@example.org']")
        if "@" not in self.sender:
            raise Invalid("sender", f"{self.sender!r} is not an address", "write it like 'printfarm@example.org'")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise Invalid("ca_file", f"file {self.ca_file} not found", "give the path of an existing PEM file")
        has_password = bool(self.password_file or self.password_env)
        self.password = Secret(read_secret("password", self.password_file, self.password_env)) if has_password else None
        if self.password is not None and not (self.starttls or self.smtps):
            raise Invalid("password_file" if self.password_file else "password_env",
                          "the password would travel in clear (starttls and smtps are both off)",
                          "set starttls = true, or smtps = true for a server that speaks TLS from the start")


class ReportsConfig(Section):
    out_dir: str = "/var/lib/printfarm-server/reports"
    formats: list[str] = msgspec.field(default_factory=lambda: list(FORMATS))
    lang: str = "sv"
    tz: str = periods.DEFAULT_TZ
    silence_after: float = 120.0
    network_name: str = ""  # shown on the one-page summary, e.g. "ACES — Additive Coordination in East middle Sweden"
    schedule: ScheduleConfig = msgspec.field(default_factory=ScheduleConfig)
    mail: MailConfig | None = None

    def __post_init__(self):
        check_formats("formats", self.formats)
        if self.lang not in LANGS:
            raise Invalid("lang", f"{self.lang!r} is not a report language", "use 'sv' or 'en'")
        try:
            periods.zone(self.tz)
        except periods.PeriodError as exc:
            raise Invalid("tz", str(exc), "use an IANA zone like 'Europe/Stockholm'") from None
        check_range("silence_after", self.silence_after, 1, 86_400)


def check_formats(key: str, formats: list[str]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise Invalid(key, f"{unknown or formats!r} is not a list of known formats",
                      f"use any of {', '.join(FORMATS)}")


def check_formats_cli(formats: list[str]) -> None:
    """The same check for --format, as a plain ValueError."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format {','.join(formats)!r}: use any of {', '.join(FORMATS)}, comma-separated")


def load(raw: dict, source: str = "") -> ReportsConfig:
    """Validate the raw ``[reports]`` table; ConfigError keys are prefixed ``reports.``."""
    return convert({"reports": raw}, _Wrapper, source).reports


class _Wrapper(msgspec.Struct):
    reports: ReportsConfig = msgspec.field(default_factory=ReportsConfig)
