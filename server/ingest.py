"""MQTT messages in, validated messages out: decode, tag, store, and tell listeners."""

from __future__ import annotations

import logging
import time
from typing import Callable

from common import protocol
from common.text import one_line, plain, plain_or_none
from server import directory_points, lineproto, routing
from server.live import LiveFleet
from server.metrics import Metrics
from server.inventory import Inventory, Tags
from server.privacy import UserNames

log = logging.getLogger(__name__)

Listener = Callable[[protocol.Message, "Tags | None", object], None]


class RejectLog:
    """Logs the first rejection of each reason at once, then a count per minute: no log storms."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 what: str = "rejected message"):
        self.every, self.clock, self.what = every, clock, what
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, reason: str, topic: str, detail: str) -> None:
        now = self.clock()
        last = self._last.get(reason)
        if last is None or now - last >= self.every:
            extra = self._suppressed.pop(reason, 0)
            more = f" (and {extra} more since the last report)" if extra else ""
            log.warning("%s on %s: %s: %s%s", self.what, one_line(topic), reason, one_line(detail), more)
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
        self.drops = RejectLog(what="dropped part of a message")
        self._dropped: list[str] = []  # sensor names protocol.decode left out of the message at hand
        self.reject_unlisted, self.max_unlisted = reject_unlisted, max_unlisted
        self._counts = self.metrics.counters
        # Counted per message in plain ints, added to the metrics once per burst (end_burst).
        self._n_received = self._n_accepted = 0
        # The pseudonym of (site, user), cached and bounded (common/pseudonyms.py): memory only.
        # An agent that pseudonymises at the source sends one already; it is kept as it is.
        self._pseudonym = users.pseudonyms.stored if users else None
        self._other_keys: dict[str, str] = {}  # agent -> the foreign key ID last warned about
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
            msg = protocol.decode(parsed, payload, int(self.clock() * 1000), self._dropped)
        except protocol.Rejected as exc:
            return self._reject(exc.reason, topic, exc.detail)
        if self._dropped:
            self._note_dropped(topic)
        _PLAIN[type(msg)](msg)
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
            msg = protocol.decode(parsed, payload, int(self.clock() * 1000), self._dropped)
        except protocol.Rejected as exc:
            return self._reject(exc.reason, topic, exc.detail)
        if self._dropped:
            self._note_dropped(topic)
        _PLAIN[type(msg)](msg)
        if parsed.kind == "agent":
            unlisted = bool(self.inventory.agents) and parsed.agent not in self.inventory.agents
            if self._refused(parsed.agent, unlisted):
                return self._reject(self._unlisted_reason(), topic, "agent is not in the inventory's [agents]")
            if msg.key_id and self.users:
                self._check_key(msg)
            if not (msg.will and self._stamp_will(msg)):
                self.write(lineproto.agent(msg))
            return self._accepted(msg, None)
        cached = self._tags_for(parsed.site, parsed.printer)
        if cached is None:
            return self._reject(self._unlisted_reason(), topic, "printer is not in the inventory")
        tags, tag_str, outlet = cached
        emit = self._info_emit(outlet, tags) if parsed.kind == "info" else getattr(outlet, parsed.kind)
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

    def _info_emit(self, outlet, tags: Tags):
        """An Info's point: its capabilities completed by the inventory (server/directory_points.py)."""
        def emit(msg: protocol.Info, _tag_str: str) -> None:
            outlet.info(directory_points.line(msg, tags, self.inventory))
        return emit

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
        if kind == "event" and self.users.keep_raw and raw != msg.user:  # not when the agent sent a pseudonym
            outlet.job_user(msg, tag_str, raw)
        self.users.show(msg, raw)  # as pseudonyms: nothing to change

    def _check_key(self, msg: protocol.AgentStatus) -> None:
        """An agent pseudonymising with another secret: its users' pseudonyms match nothing else.
        Logged once per agent and key (docs/agent.md)."""
        if msg.key_id != self.users.pseudonyms.key_id() and self._other_keys.get(msg.agent) != msg.key_id:
            self._other_keys[msg.agent] = msg.key_id
            log.warning("agent %s pseudonymises users with another secret (key %s, ours %s): give it a copy of "
                        "the collector's [privacy] secret", msg.agent, msg.key_id, self.users.pseudonyms.key_id())

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

    def _note_dropped(self, topic: str) -> None:
        """Readings of unknown sensors left out; the rest of the message is kept."""
        self.metrics.inc("temperatures_dropped", len(self._dropped))
        names = ", ".join(repr(name[:40]) for name in self._dropped[:5])
        self.drops.note("unknown_sensor", topic, f"temperature(s) {names} left out: not a known sensor name")
        self._dropped.clear()

    def _reject(self, reason: str, topic: str, detail: str) -> None:
        self._dropped.clear()  # the whole message is refused: nothing of it to count as left out
        self.metrics.reject(reason)
        self.rejects.note(reason, topic, detail)
        return None


# Printer text made plain where it enters (common/text.py), before anything stores, shows or
# alerts on it: no control character (terminal escapes), no bidirectional override. Each checks
# first, in C, whether there is anything to do: this runs for every message.

def _telemetry_texts(msg: protocol.Telemetry) -> None:
    file, user = msg.file, msg.user
    if msg.state_text.isprintable() and (file is None or file.isprintable()) and (user is None or user.isprintable()):
        return
    msg.state_text, msg.file, msg.user = plain(msg.state_text), plain_or_none(file), plain_or_none(user)


def _status_texts(msg: protocol.Status) -> None:
    msg.state_text, msg.error, msg.file = plain(msg.state_text), plain_or_none(msg.error), plain_or_none(msg.file)


def _event_texts(msg: protocol.Event) -> None:
    msg.file, msg.user, msg.error = plain_or_none(msg.file), plain_or_none(msg.user), plain_or_none(msg.error)


def _agent_texts(msg: protocol.AgentStatus) -> None:
    msg.version = plain(msg.version)


def _info_texts(msg: protocol.Info) -> None:
    msg.model = _name(msg.model)
    for tool in (*msg.tools, *msg.slots):
        tool.nozzle_type, tool.material = _name(tool.nozzle_type), _name(tool.material)


def _name(text: str | None) -> str | None:
    """A name a printer reports (model, material): plain, trimmed, None when nothing is left."""
    return (plain(text).strip() or None) if text is not None else None


_PLAIN = {protocol.Telemetry: _telemetry_texts, protocol.Status: _status_texts, protocol.Event: _event_texts,
          protocol.AgentStatus: _agent_texts, protocol.Info: _info_texts}
