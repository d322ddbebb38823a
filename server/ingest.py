"""MQTT messages in, validated messages out: decode, tag, store, and tell listeners."""

from __future__ import annotations

import logging
import time
from typing import Callable

from common import protocol
from common.text import one_line
from server import lineproto, routing
from server.live import LiveFleet
from server.metrics import Metrics
from server.inventory import Inventory, Tags
from server.privacy import UserNames

log = logging.getLogger(__name__)

Listener = Callable[[protocol.Message, "Tags | None", object], None]


class RejectLog:
    """Logs the first rejection of each reason at once, then a count per minute: no log storms."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.every, self.clock = every, clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, reason: str, topic: str, detail: str) -> None:
        now = self.clock()
        last = self._last.get(reason)
        if last is None or now - last >= self.every:
            extra = self._suppressed.pop(reason, 0)
            more = f" (and {extra} more since the last report)" if extra else ""
            log.warning("rejected message on %s: %s: %s%s", one_line(topic), reason, one_line(detail), more)
            self._last[reason] = now
        else:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1


class Ingest:
    """Printers missing from the inventory are stored and tracked with ``listed=false`` — at most
    ``max_unlisted`` of them (and of agents missing from its ``[agents]`` table, where it has
    one); with ``reject_unlisted`` none. Messages of the others are refused and counted."""

    def __init__(self, inventory: Inventory, fleet: LiveFleet, write: Callable[[str], None],
                 clock: Callable[[], float] = time.time, metrics: Metrics | None = None,
                 reject_unlisted: bool = False, max_unlisted: int = 1000, users: UserNames | None = None,
                 routes: routing.OneDatabase | routing.PerOrganisation | None = None):
        """``write`` takes agents' lines, and printers' too unless ``routes`` sends them elsewhere."""
        self.inventory, self.fleet, self.write, self.clock = inventory, fleet, write, clock
        self.outlets = routes or routing.OneDatabase(write)
        self.users = users  # None: user names pass as they come (unit tests of other parts)
        self.metrics = metrics or Metrics()
        self.listeners: list[Listener] = []
        self.rejects = RejectLog()
        self.reject_unlisted, self.max_unlisted = reject_unlisted, max_unlisted
        self._counts = self.metrics.counters
        # Counted per message in plain ints, added to the metrics once per burst (end_burst).
        self._n_received = self._n_accepted = 0
        # The pseudonym of (site, user), cached and bounded (server/pseudonyms.py): memory only.
        self._pseudonym = users.pseudonyms.of if users else None
        self._more_of_users = bool(users) and users.shown != "pseudonym"  # views show names, or none
        self._topics: dict[str, protocol.Topic | None] = {}
        # listed printers' topics: (Topic, Tags, tag set, the outlet's method for the kind, the
        # printer's LiveFleet entry, its outlet)
        self._routes: dict[str, tuple] = {}
        self._tags: dict[tuple[str, str], tuple[Tags, str, object]] = {}
        self._unlisted: set = set()  # unlisted printers (site, printer) and agents tracked

    def handle(self, topic: str, payload: bytes) -> protocol.Message | None:
        self._n_received += 1
        # The hot path: a listed printer's topic seen before. Its parse and tags never change
        # (the inventory is fixed for the collector's life), so one look-up finds them.
        route = self._routes.get(topic)
        if route is None:
            return self._handle_first(topic, payload)
        parsed, tags, tag_str, emit, entry, outlet = route
        try:
            msg = protocol.decode(parsed, payload, int(self.clock() * 1000))
        except protocol.Rejected as exc:
            return self._reject(exc.reason, topic, exc.detail)
        self._store(msg, parsed, tag_str, emit, outlet)
        if entry is None:
            return self._accepted(msg, tags)
        self._n_accepted += 1
        return self._tell(msg, tags, self.fleet.telemetry(entry, msg))

    def end_burst(self) -> None:
        """Add the burst's counts to the metrics: their totals are exact at every burst's end."""
        counts = self._counts
        counts["messages_received"] += self._n_received
        counts["messages_accepted"] += self._n_accepted
        self._n_received = self._n_accepted = 0

    def _handle_first(self, topic: str, payload: bytes) -> protocol.Message | None:
        """Any message but a listed printer's on a topic already routed: agents, unlisted
        printers (counted and limited per message), bad topics, and each topic's first."""
        parsed = self._topic(topic)
        if parsed is None:
            return self._reject("bad_topic", topic, "not a printfarm topic")
        try:
            msg = protocol.decode(parsed, payload, int(self.clock() * 1000))
        except protocol.Rejected as exc:
            return self._reject(exc.reason, topic, exc.detail)
        if parsed.kind == "agent":
            unlisted = bool(self.inventory.agents) and parsed.agent not in self.inventory.agents
            if self._refused(parsed.agent, unlisted):
                return self._reject(self._unlisted_reason(), topic, "agent is not in the inventory's [agents]")
            if not (msg.will and self._stamp_will(msg)):
                self.write(lineproto.agent(msg))
            return self._accepted(msg, None)
        cached = self._tags_for(parsed.site, parsed.printer)
        if cached is None:
            return self._reject(self._unlisted_reason(), topic, "printer is not in the inventory")
        tags, tag_str, outlet = cached
        emit = getattr(outlet, parsed.kind)
        if tags.listed and len(self._routes) < 100_000:
            entry = self.fleet.entry(tags) if parsed.kind == "telemetry" else None
            self._routes[topic] = (parsed, tags, tag_str, emit, entry, outlet)
        self._store(msg, parsed, tag_str, emit, outlet)
        return self._accepted(msg, tags)

    def _store(self, msg: protocol.Message, parsed: protocol.Topic, tag_str: str, emit, outlet) -> None:
        """A printer's message as its point(s), with its user name hidden where configured: the
        one place, inline: this runs for every message."""
        raw = getattr(msg, "user", None) if self._pseudonym else None
        if not raw:
            emit(msg, tag_str)
            return
        msg.user = self._pseudonym(parsed.site, raw)
        emit(msg, tag_str)
        if self._more_of_users or parsed.kind == "event":
            self._raw_user(msg, parsed.kind, tag_str, raw, outlet)

    def _accepted(self, msg: protocol.Message, tags: Tags | None) -> protocol.Message:
        self._n_accepted += 1
        return self._tell(msg, tags, self.fleet.apply(msg, tags))

    def _tell(self, msg: protocol.Message, tags: Tags | None, state) -> protocol.Message:
        for listener in self.listeners:
            try:
                listener(msg, tags, state)
            except Exception:  # a listener's bug must not stop ingestion
                log.exception("listener %r failed", listener)
        return msg

    def _raw_user(self, msg, kind: str, tag_str: str, raw: str, outlet) -> None:
        """Keep the raw name of a job event when configured (purged after raw_user_days), then
        give the views and alert rules what [privacy] users says they show."""
        if kind == "event" and self.users.keep_raw:
            outlet.job_user(msg, tag_str, raw)
        self.users.show(msg, raw)  # as pseudonyms: nothing to change

    def _stamp_will(self, msg: protocol.AgentStatus) -> bool:
        """Date a last-will by its arrival; True when the agent is already known offline.

        Its own ts is when the agent connected. A retained will comes again on every
        (re)subscription: it is stored only once the agent was last seen online.
        """
        msg.ts = max(msg.ts, int(self.clock() * 1000))
        known = self.fleet.agents.get(msg.agent)
        return known is not None and known.state == "offline"

    def _topic(self, topic: str) -> protocol.Topic | None:
        try:
            return self._topics[topic]
        except KeyError:
            parsed = protocol.parse_topic(topic)
            if len(self._topics) < 100_000:  # garbage topics must not grow the cache forever
                self._topics[topic] = parsed
            return parsed

    def _tags_for(self, site: str, printer: str) -> tuple[Tags, str, object] | None:
        """Tags for a printer's messages; None when its messages are refused (unlisted)."""
        key = (site, printer)
        cached = self._tags.get(key)
        if cached is None:
            tags = self.inventory.tags(site, printer)
            if not tags.listed and self._refused(key, True):
                return None
            if not tags.listed:
                log.warning("printer %s/%s is not in the inventory: storing its data with listed=false", site, printer)
            cached = self._tags[key] = (tags, lineproto.tag_set(tags), self.outlets.outlet(tags))
        if not cached[0].listed:
            self._counts["unlisted_messages"] += 1
        return cached

    def _refused(self, key, unlisted) -> bool:
        """Whether an unlisted printer's or agent's messages are refused (tracking it if not)."""
        if not unlisted or key in self._unlisted:
            return False
        if self.reject_unlisted or len(self._unlisted) >= self.max_unlisted:
            return True
        self._unlisted.add(key)
        return False

    def _unlisted_reason(self) -> str:
        return "unlisted" if self.reject_unlisted else "too_many_unlisted"

    def _reject(self, reason: str, topic: str, detail: str) -> None:
        self.metrics.reject(reason)
        self.rejects.note(reason, topic, detail)
        return None

