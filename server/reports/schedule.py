"""Scheduled reports: an APScheduler cron job that writes the previous month/quarter/year's report
to ``[reports] out_dir`` and, when ``[reports.mail]`` is set, mails the files.

``printfarm-server report --schedule`` runs it in the foreground; ``start_background`` lets another
process (e.g. the collector) host it on a BackgroundScheduler.
"""

from __future__ import annotations

import logging
import signal
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

from apscheduler.triggers.cron import CronTrigger

from server.reports import periods
from server.reports.config import MailConfig, ReportsConfig
from server.reports.generate import make_report, people_for, write_files
from server.store.influx import client_for

log = logging.getLogger(__name__)


def run_once(cfg, inventory, rcfg: ReportsConfig, now_ms: int | None = None,
             send: Callable[[EmailMessage, MailConfig], None] | None = None,
             make: Callable = make_report, client=None) -> list[Path]:
    """Write (and mail) the report for the last complete period before ``now_ms``."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    period = periods.previous(rcfg.schedule.period, now_ms, rcfg.tz)
    client = client or client_for(cfg)
    where = {}
    if cfg.influx.layout == "organisations":  # the network's report: every organisation's, no file names
        from server.reports.cli import sources_for
        sources, detail = sources_for(cfg, inventory, client, (None,))
        where = {"sources": sources, "detail": detail}
    if not cfg.rollups.enabled:  # the maintenance section counts printing hours from the jobs then
        where["use_rollups"] = False
    report = make(client, inventory, period, now_ms=now_ms, grace_s=rcfg.silence_after,
                  people=people_for(cfg), **where)
    report.network_name = rcfg.network_name
    paths = write_files(report, rcfg.formats, rcfg.out_dir, rcfg.lang)
    if rcfg.mail:
        (send or send_mail)(message(rcfg.mail, period.label, paths), rcfg.mail)
    return paths


def _job(cfg, inventory, rcfg: ReportsConfig) -> None:
    try:
        run_once(cfg, inventory, rcfg)
    except Exception:  # the next run must still happen; the log says why this one failed
        log.exception("scheduled report failed")


def message(mail: MailConfig, label: str, paths: list[Path]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"printfarm report {label}"
    msg["From"] = mail.sender
    msg["To"] = ", ".join(mail.to)
    msg.set_content(f"The printfarm utilisation report for {label} is attached ({len(paths)} files).")
    for path in paths:
        subtype = {"pdf": "pdf", "csv": "csv", "xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
        main = "text" if path.suffix == ".csv" else "application"
        msg.add_attachment(path.read_bytes(), maintype=main, subtype=subtype[path.suffix.lstrip(".")],
                           filename=path.name)
    return msg


def send_mail(msg: EmailMessage, mail: MailConfig) -> None:
    """Send over TLS whose certificate is checked (name and chain) before any login."""
    context = ssl.create_default_context(cafile=mail.ca_file)
    if mail.smtps:
        smtp = smtplib.SMTP_SSL(mail.host, mail.port, timeout=mail.timeout, context=context)
    else:
        smtp = smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout)
    with smtp:
        if mail.starttls and not mail.smtps:
            smtp.starttls(context=context)
        if mail.username and mail.password is not None:
            smtp.login(mail.username, mail.password.reveal())
        smtp.send_message(msg)
    log.info("report mailed to %d recipient(s)", len(mail.to))


def trigger(rcfg: ReportsConfig) -> CronTrigger:
    return CronTrigger.from_crontab(rcfg.schedule.cron, timezone=periods.zone(rcfg.tz))


def add_job(scheduler, cfg, inventory, rcfg: ReportsConfig):
    return scheduler.add_job(_job, trigger(rcfg), args=(cfg, inventory, rcfg), id="printfarm-report",
                             coalesce=True, max_instances=1, misfire_grace_time=3600)


def start_background(cfg, inventory, rcfg: ReportsConfig):
    """A started BackgroundScheduler with the report job, or None when the schedule is disabled."""
    if not rcfg.schedule.enabled:
        return None
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone=periods.zone(rcfg.tz))
    add_job(scheduler, cfg, inventory, rcfg)
    scheduler.start()
    return scheduler


def run_forever(cfg, inventory, rcfg: ReportsConfig) -> int:
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not rcfg.schedule.enabled:
        log.error("[reports.schedule] enabled is false: nothing to run — set enabled = true")
        return 2
    scheduler = BlockingScheduler(timezone=periods.zone(rcfg.tz))
    job = add_job(scheduler, cfg, inventory, rcfg)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: scheduler.shutdown(wait=False))
    log.info("report schedule '%s' (previous %s) → %s", rcfg.schedule.cron, rcfg.schedule.period, rcfg.out_dir)
    scheduler.start()
    del job
    return 0
