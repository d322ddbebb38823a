"""``printfarm-agent run|check-config --config FILE``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from agent import config as agent_config

log = logging.getLogger("agent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="printfarm-agent", description="Poll printers and publish to MQTT.")
    parser.add_argument("command", choices=["run", "check-config"])
    parser.add_argument("-c", "--config", default="/etc/printfarm/agent.toml", help="TOML config file")
    args = parser.parse_args(argv)
    try:
        cfg = agent_config.load(args.config)
    except agent_config.ConfigError as exc:
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        names = ", ".join(f"{p.site}/{p.id}" for p in cfg.printers)
        print(f"config ok: agent {cfg.agent.id}, {len(cfg.printers)} printer(s): {names}")
        print(sharing_line(cfg))
        return 0
    return run(cfg)


def sharing_line(cfg) -> str:
    """What leaves the site, per site; the key ID to compare with the collector's (docs/agent.md)."""
    sites = sorted({p.site for p in cfg.printers})
    pseudonyms = cfg.privacy.pseudonyms
    users = f"pseudonyms (secret {pseudonyms.key_id()})" if pseudonyms else "not sent (no [privacy] secret)"
    return "sharing: " + ", ".join(f"{s}={cfg.privacy.policy(s)}" for s in sites) + f"; users: {users}"


def run(cfg) -> int:
    from agent.service import Agent

    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agent import logbounds

    logbounds.install(cfg.limits.log_lines_per_minute)
    agent = Agent(cfg)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    agent.start()
    done.wait()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
