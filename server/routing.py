"""Which database each of a printer's lines goes to (docs/organisations.md).

Ingest hands every printer's messages to that printer's *outlet*, one method per kind of message.
With one database (``[influx] layout = "single"``, as before) the outlet writes each line there.
Per organisation, it writes the full line to the organisation's database, and for state changes
and job events a line without file name and user to the network's. Telemetry (temperatures,
progress: ~99 % of the lines) and the raw user names of jobs (``job_user``) go to the
organisation's only: the network's figures are made of state changes, job events and the rollups,
and writing every poll twice would cost the collector ~+60 % CPU (bench/organisations_cost.py).
The outlet is made once per printer, so the hot path pays one method call.
"""

from __future__ import annotations

from typing import Callable

from server import lineproto
from server.inventory import Tags

Write = Callable[[str], None]


class OneDatabase:
    """Every line into the collector's database."""

    def __init__(self, write: Write):
        self.write = write

    def outlet(self, tags: Tags) -> "_Together":
        return _Together(self.write)


class PerOrganisation:
    """Detail into the organisation's database, the network's figures into the network's.
    ``org_write(org)`` gives the write of ``org``'s database."""

    def __init__(self, network: Write, org_write: Callable[[str], Write]):
        self.network, self.org_write = network, org_write

    def outlet(self, tags: Tags) -> "_Apart":
        return _Apart(self.org_write(tags.org), self.network)


class _Together:
    __slots__ = ("write",)

    def __init__(self, write: Write):
        self.write = write

    def telemetry(self, msg, tags: str) -> None:
        self.write(lineproto.telemetry(msg, tags))

    def status(self, msg, tags: str) -> None:
        self.write(lineproto.status(msg, tags))

    def event(self, msg, tags: str) -> None:
        self.write(lineproto.event(msg, tags))

    def job_user(self, msg, tags: str, raw: str) -> None:
        self.write(lineproto.job_user(msg, tags, raw))

    def info(self, line: str) -> None:
        self.write(line)


class _Apart:
    __slots__ = ("org", "network")

    def __init__(self, org: Write, network: Write):
        self.org, self.network = org, network

    def telemetry(self, msg, tags: str) -> None:
        self.org(lineproto.telemetry(msg, tags))

    def status(self, msg, tags: str) -> None:
        self.org(lineproto.status(msg, tags))
        self.network(lineproto.status_network(msg, tags))

    def event(self, msg, tags: str) -> None:
        self.org(lineproto.event(msg, tags))
        self.network(lineproto.event_network(msg, tags))

    def job_user(self, msg, tags: str, raw: str) -> None:
        self.org(lineproto.job_user(msg, tags, raw))

    def info(self, line: str) -> None:
        """A printer_info point (server/directory_points.py): figures, no file and no user, so both."""
        self.org(line)
        self.network(line)
