"""The wire contract between agents and collectors: topics, payloads, IDs.

Both packages import this module; a topic is built and parsed here only.

Topics (all under ``printfarm/v1``):

- ``printfarm/v1/<site>/<printer>/status``    retained, on every state change
- ``printfarm/v1/<site>/<printer>/telemetry`` every poll
- ``printfarm/v1/<site>/<printer>/event``     job and connection events
- ``printfarm/v1/<site>/<printer>/info``      retained; what the printer can do (Info), on change
- ``printfarm/v1/agent/<agent>/status``       retained; the last-will says offline

Every payload is JSON with ``v`` (schema version) and ``ts`` (milliseconds since
the epoch, taken at the printer when the sample was made), so a message replayed
late still lands at the moment it describes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1
PREFIX = "printfarm/v1"
AGENT_SEGMENT = "agent"  # reserved: no site may be called "agent"
# Matched with fullmatch: "$" would also accept a trailing newline ("lab\n").
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
MAX_ID_LEN = 64

State = Literal[
    "offline", "idle", "printing", "paused", "finishing", "cancelling", "error", "unreachable"
]
STATES: tuple[str, ...] = State.__args__  # type: ignore[attr-defined]
# States in which a job is under way on the printer.
ACTIVE_STATES = frozenset({"printing", "paused", "finishing", "cancelling"})

EventKind = Literal[
    "started", "done", "failed", "cancelled", "paused", "resumed", "connected", "disconnected"
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
JOB_END_KINDS = frozenset({"done", "failed", "cancelled"})

TEMP_KEY_RE = re.compile(r"tool\d{1,2}|bed|chamber")  # fullmatch: they become field keys
# The same rule as a set of names, which msgspec's decoder checks in C (a pattern there would
# cost more than the rest of the message's decoding).
TEMP_KEYS = ("bed", "chamber", *(f"tool{n}" for n in range(10)), *(f"tool{n:02d}" for n in range(100)))
TempKey = Literal[TEMP_KEYS]  # type: ignore[valid-type]
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]


def valid_id(value: str) -> bool:
    """True for an ID that is safe as one topic level and as a tag value."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_ID_LEN
        and ID_RE.fullmatch(value) is not None
        and value != AGENT_SEGMENT
    )


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a valid ID, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "must not be empty"
    if any(c in value for c in "/+#"):
        return "must not contain '/', '+' or '#' (they are MQTT topic syntax)"
    if len(value) > MAX_ID_LEN:
        return f"must be at most {MAX_ID_LEN} characters"
    if value == AGENT_SEGMENT:
        return f"'{AGENT_SEGMENT}' is reserved for agent status topics"
    if not ID_RE.fullmatch(value):
        return "use lower-case letters, digits, '-' and '_' only, starting with a letter or digit"
    return None


# --- topics -----------------------------------------------------------------

PRINTER_CHANNELS = ("status", "telemetry", "event", "info")


def printer_topic(site: str, printer: str, channel: str) -> str:
    if channel not in PRINTER_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return f"{PREFIX}/{site}/{printer}/{channel}"


def agent_topic(agent: str) -> str:
    return f"{PREFIX}/{AGENT_SEGMENT}/{agent}/status"


# Subscriptions a collector needs (agent topics match the first one, too).
SUBSCRIPTIONS = (f"{PREFIX}/+/+/+",)


class Topic(msgspec.Struct, frozen=True):
    kind: str  # "status" | "telemetry" | "event" | "info" | "agent"
    site: str | None
    printer: str | None
    agent: str | None


def parse_topic(topic: str) -> Topic | None:
    """Parse a printfarm topic; None for anything that is not one of ours."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    a, b, channel = parts[2], parts[3], parts[4]
    if a == AGENT_SEGMENT:
        if channel != "status" or not valid_id(b):
            return None
        return Topic("agent", None, None, b)
    if channel not in PRINTER_CHANNELS or not valid_id(a) or not valid_id(b):
        return None
    return Topic(channel, a, b, None)


# --- payloads ---------------------------------------------------------------


class Temperature(msgspec.Struct, array_like=True, omit_defaults=True):
    actual: float | None = None
    target: float | None = None


Layer = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]


class PrinterMessage(msgspec.Struct, omit_defaults=True):
    """What every message about a printer starts with (its fields come first on the wire)."""
    v: int
    ts: int
    printer: str
    site: str
    seq: int  # the agent's sequence number for the printer: redeliveries and gaps show


class Telemetry(PrinterMessage, omit_defaults=True):
    state: State
    state_text: str = ""
    temps: dict[TempKey, Temperature] = {}
    progress: Percent | None = None
    print_time: float | None = None  # seconds printed so far
    time_left: float | None = None  # seconds, OctoPrint's estimate
    file: str | None = None
    user: str | None = None
    filament_mm: float | None = None  # slicer's estimate for the job, all tools
    layer: Layer | None = None  # the layer being printed, where the printer's API tells
    layers: Layer | None = None  # the job's number of layers


class _LooseTelemetry(Telemetry, omit_defaults=True):
    """Telemetry whose sensor names are not checked yet (see _known_temps)."""
    temps: dict[str, msgspec.Raw] = {}


class Status(PrinterMessage, omit_defaults=True):
    state: State
    prev_state: State | None = None
    state_text: str = ""
    error: str | None = None
    file: str | None = None
    agent: str | None = None
    api: str | None = None  # the printer API the agent watches it through ("octoprint", ...)
    coalesced: int = 0  # state changes since the previous status that were not sent (rate limit)


# Free texts a printer reports about its material ("PETG-CF", "Bambu PLA Basic"), not IDs.
MaterialName = Annotated[str, msgspec.Meta(max_length=40)]
Colour = Annotated[str, msgspec.Meta(pattern="^#[0-9A-Fa-f]{6}$")]  # "#RRGGBB"
Amount = Annotated[float, msgspec.Meta(ge=0, le=1e9)]
MaterialSource = Literal["measured", "slicer"]  # the printer measured it, or the slicer estimated it


class MaterialUse(msgspec.Struct, omit_defaults=True):
    """One tool's (extruder's, AMS slot's) material of a job. ``grams`` and ``mm`` are for the
    whole job as the source gives them: the collector counts a failed or cancelled job's
    slicer estimate pro rata to the event's ``progress``; a measured amount as it is."""
    source: MaterialSource
    tool: Annotated[int, msgspec.Meta(ge=0, le=99)] = 0
    type: MaterialName | None = None
    colour: Colour | None = None
    grams: Amount | None = None
    mm: Amount | None = None


class Event(PrinterMessage, omit_defaults=True):
    kind: EventKind
    file: str | None = None
    user: str | None = None
    duration: float | None = None  # seconds from "started" to the end of the job
    print_time: float | None = None  # OctoPrint's own print time, when known
    filament_mm: float | None = None
    error: str | None = None
    job_started: int | None = None  # ts of the job's "started", on end events
    progress: Percent | None = None  # the job's progress when it ended, on end events
    material: list[MaterialUse] = []  # on "started" (what the job will use) and on end events


class Tool(msgspec.Struct, omit_defaults=True):
    """One extruder or material slot (AMS tray, MMU slot) and what is loaded in it."""
    nozzle_mm: Annotated[float, msgspec.Meta(gt=0, le=5)] | None = None
    nozzle_type: MaterialName | None = None  # "hardened_steel", "brass", "stainless_steel"
    material: MaterialName | None = None  # loaded now
    colour: Colour | None = None


class Info(PrinterMessage, omit_defaults=True):
    """What the printer can do, as it says itself (the collector completes it from the
    inventory). Retained; sent when it changes. Carries no file name and no user."""
    model: MaterialName | None = None
    volume: Annotated[list[Annotated[float, msgspec.Meta(gt=0, le=10_000)]], msgspec.Meta(min_length=3, max_length=3)] | None = None  # x, y, z in mm
    tools: Annotated[list[Tool], msgspec.Meta(max_length=16)] = []  # extruders / nozzles
    slots: Annotated[list[Tool], msgspec.Meta(max_length=32)] = []  # AMS trays, MMU slots: materials loaded
    enclosed: bool | None = None
    queued_jobs: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | None = None  # the printer's own job queue
    queued_s: Amount | None = None  # estimated seconds of the queued jobs, where known


class AgentStatus(msgspec.Struct, omit_defaults=True):
    v: int
    ts: int
    agent: str
    state: Literal["online", "offline"]
    dropped: int = 0  # messages the outbox had to drop, since the agent's first start
    printers: list[str] = []
    version: str = ""
    # True in the last-will: MQTT fixes a will at connect time, so its ts is the connect
    # time, not the moment the agent vanished; the collector stamps it on arrival.
    will: bool = False
    # Which pseudonym secret the agent makes users' pseudonyms with (common/pseudonyms.py
    # key_id, not the secret); empty without one. The collector warns when it is not its own.
    key_id: Annotated[str, msgspec.Meta(max_length=64, pattern="^[0-9a-f]*$")] = ""


Message = Telemetry | Status | Event | Info | AgentStatus

_encoder = msgspec.json.Encoder()


def encode(msg: Message) -> bytes:
    return _encoder.encode(msg)


# --- validation -------------------------------------------------------------

MAX_PAYLOAD_BYTES = 16 * 1024
# A broker's max_packet_size: the payload cap plus a topic (at most 152 bytes) and the PUBLISH
# header (at most 9), with room to spare; deploy/central/mosquitto/mosquitto.conf ships it.
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 512
MAX_FUTURE_MS = 5 * 60 * 1000  # clocks drift; more than this is a broken clock
MIN_TS_MS = 1_500_000_000_000  # 2017: anything older is an unset clock


class Rejected(Exception):
    """A message that fails validation; ``reason`` is a short counter label."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


_decoders = {
    "telemetry": msgspec.json.Decoder(Telemetry),
    "status": msgspec.json.Decoder(Status),
    "event": msgspec.json.Decoder(Event),
    "info": msgspec.json.Decoder(Info),
    "agent": msgspec.json.Decoder(AgentStatus),
}
_version_probe = msgspec.json.Decoder(dict[str, object])
_NON_FINITE_LITERAL = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]")


def decode(topic: Topic, payload: bytes, now_ms: int, dropped: list[str] | None = None) -> Message:
    """Decode and validate one payload that arrived on ``topic``.

    Raises Rejected with a reason label for anything that is not a sound message. A temperature
    whose sensor name is not one of TEMP_KEYS (OctoPrint's ``tool_heatbreak``, say) is left out,
    not a reason to refuse the printer's telemetry: its name is appended to ``dropped``.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise Rejected("too_large", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        msg = _decoders[topic.kind].decode(payload)
    except msgspec.DecodeError as exc:
        if topic.kind != "telemetry" or "at `key` in `$.temps`" not in str(exc):
            raise _classify_decode_error(payload, exc) from None
        msg = _known_temps(payload, dropped)
    # The usual message: telemetry or an event that passes every check of _check at once.
    if (type(msg) in _PRINTER_ONLY and msg.v == SCHEMA_VERSION and MIN_TS_MS <= msg.ts <= now_ms + MAX_FUTURE_MS
            and msg.printer == topic.printer and msg.site == topic.site):
        return msg
    _check(topic, msg, now_ms)
    return msg


_loose_telemetry = msgspec.json.Decoder(_LooseTelemetry)
_temperature = msgspec.json.Decoder(Temperature)
_TEMP_KEY_SET = frozenset(TEMP_KEYS)


def _known_temps(payload: bytes, dropped: list[str] | None) -> Telemetry:
    """Telemetry with only the temperatures of known sensor names (the slow path: the strict
    decoder refused a name). Other values are checked as strictly as ever."""
    try:
        loose = _loose_telemetry.decode(payload)
        temps = {name: _temperature.decode(raw) for name, raw in loose.temps.items() if name in _TEMP_KEY_SET}
    except msgspec.DecodeError as exc:
        raise _classify_decode_error(payload, exc) from None
    if dropped is not None:
        dropped.extend(name for name in loose.temps if name not in _TEMP_KEY_SET)
    fields = msgspec.structs.asdict(loose)
    fields["temps"] = temps
    return Telemetry(**fields)


def _classify_decode_error(payload: bytes, exc: msgspec.DecodeError) -> Rejected:
    try:
        raw = _version_probe.decode(payload)
    except msgspec.DecodeError:
        if "out of range" in str(exc):  # 1e999 and the like: JSON's only "infinity"
            return Rejected("not_finite", str(exc))
        if _NON_FINITE_LITERAL.search(payload):  # NaN/Infinity, as Python's json.dumps writes them
            return Rejected("not_finite", str(exc))
        return Rejected("malformed_json", str(exc))
    version = raw.get("v")
    if isinstance(version, int) and version != SCHEMA_VERSION:
        return Rejected("unknown_version", f"v={version}")
    if "Expected `float` <=" in str(exc) or "Expected `float` >=" in str(exc):  # a Meta(ge/le) bound
        return Rejected("out_of_range", str(exc))
    return Rejected("invalid_schema", str(exc))


# Kinds whose only checks are the version, the time and the topic's site and printer.
_PRINTER_ONLY = frozenset({Telemetry, Event})


def _check(topic: Topic, msg: Message, now_ms: int) -> None:
    if msg.v != SCHEMA_VERSION:
        raise Rejected("unknown_version", f"v={msg.v}")
    if msg.ts < MIN_TS_MS:
        raise Rejected("bad_timestamp", f"ts={msg.ts} is before 2017")
    if msg.ts > now_ms + MAX_FUTURE_MS:
        raise Rejected("future_timestamp", f"ts={msg.ts} is {(msg.ts - now_ms) / 1000:.0f} s ahead")
    if isinstance(msg, AgentStatus):
        if msg.agent != topic.agent:
            raise Rejected("topic_mismatch", f"payload agent {msg.agent!r} on topic of {topic.agent!r}")
        _check_ids(**{f"printers[{i}]": p for i, p in enumerate(msg.printers)})
        return
    if msg.printer != topic.printer or msg.site != topic.site:
        raise Rejected(
            "topic_mismatch",
            f"payload {msg.site}/{msg.printer} on topic of {topic.site}/{topic.printer}",
        )
    # Telemetry's temperature keys and progress range are checked by the decoder itself; JSON
    # cannot carry NaN or infinity (1e999 fails decoding as out of range), so numbers are finite.
    if isinstance(msg, Status):
        _check_ids(api=msg.api, agent=msg.agent)


def _check_ids(**fields: str | None) -> None:
    """Identifier-like fields become tags, topics or keys: they must be IDs, not free text."""
    for name, value in fields.items():
        if value is not None and not valid_id(value):
            raise Rejected("invalid_schema", f"{name} {value[:40]!r} is not an ID")
