"""``printfarm-server run|check-config|report|rollup|purge-users|pseudonym|grafana-setup|migrate-organisations|
maintenance --config FILE`` (maintenance: docs/maintenance.md; report options: docs/reports.md; rollup: docs/rollups.md; purge-users and pseudonym:
docs/privacy.md; grafana-setup: docs/grafana-organisations.md; migrate-organisations: docs/organisations.md)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from common.urls import redact
from server import config as server_config
from server import inventory as inventory_mod

log = logging.getLogger("server")
TOKEN_COMMANDS = ("token-create", "token-list", "token-revoke")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printfarm-server", description="Collect printer data into InfluxDB.")
    parser.add_argument("command", choices=["run", "check-config", "report", "rollup", "purge-users", "pseudonym",
                                            "grafana-setup", "migrate-organisations", "maintenance",
                                            *TOKEN_COMMANDS])
    parser.add_argument("-c", "--config", default="/etc/printfarm/server.toml", help="TOML config file")
    from server.reports import cli as report_cli
    from server.rollups import cli as rollup_cli
    report_cli.add_arguments(parser)
    rollup_cli.add_arguments(parser)
    from server import privacy_cli, tokens_cli
    privacy_cli.add_arguments(parser)
    from server.grafana import setup as grafana_setup
    grafana_setup.add_arguments(parser)
    tokens_cli.add_arguments(parser)
    from server import maintenance_cli
    maintenance_cli.add_arguments(parser)
    args = parser.parse_intermixed_args(argv)  # account names may follow the options (pseudonym)
    try:
        cfg = server_config.load(args.config)
        inv = inventory_mod.load(cfg.inventory)
        from server.alerts import config as alerts_config
        alerts_config.load(cfg.alerts, cfg.state_dir, args.config)  # names alerts.<key> in errors
        report_cli.check_config(cfg, args.config)  # names reports.<key> in errors
    except server_config.ConfigError as exc:
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(f"config ok: {len(inv.sites)} site(s), {len(inv.printers)} printer(s), {len(inv.customers)} "
              f"customer(s), {len(inv.attribution.accounts)} account(s), {len(inv.attribution.booked)} booking(s); "
              f"MQTT {cfg.mqtt.host}:{cfg.mqtt.port}, InfluxDB {redact(cfg.influx.url)} db {cfg.influx.database}, "
              f"layout {cfg.influx.layout} ({len(inv.orgs)} organisation(s))")
        return 0
    if args.command == "report":
        return report_cli.run(cfg, inv, args)
    if args.command in TOKEN_COMMANDS:
        return {"token-create": lambda: tokens_cli.create(cfg, inv, args), "token-list": lambda: tokens_cli.listing(cfg, args),
                "token-revoke": lambda: tokens_cli.revoke(cfg, args)}[args.command]()
    if args.command == "rollup":
        logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return rollup_cli.run(cfg, inv, args)
    if args.command == "maintenance":  # docs/maintenance.md
        return maintenance_cli.run(cfg, inv, args)
    if args.command == "migrate-organisations":  # docs/organisations.md
        from server.store import migrate
        return migrate.run(cfg, inv)
    try:
        if args.command == "purge-users":
            return privacy_cli.purge(cfg, args)
        if args.command == "pseudonym":
            return privacy_cli.pseudonym(cfg, args)
        if args.command == "grafana-setup":
            return grafana_setup.run(cfg, args)
        return run(cfg)
    except server_config.ConfigError as exc:  # e.g. the pseudonym secret could not be read or made
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2


def run(cfg) -> int:
    from server.collector import Collector

    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    collector = Collector(cfg)
    # SIGTERM/SIGINT end the MQTT loop; stop() then flushes everything to InfluxDB.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: collector.subscriber.stop())
    collector.start()
    collector.run()
    collector.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
