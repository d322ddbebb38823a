"""InfluxDB line protocol for printfarm's messages, built as plain strings.

Measurements (timestamps are the printer's sample time, in ms):

- ``telemetry``  one point per poll
- ``state``      one point per state change: state, prev_state, state_text, error
- ``job``        one point per job event; tag ``kind`` (started, done, failed, ...)
- ``agent``      agent online/offline and its outbox drop count
- ``rejected``   (written by the collector itself) counts of rejected messages

Printer points carry the tags printer, site, organisation, county and listed
(``false`` for a printer missing from the inventory). A redelivered message has
the same series and time, so it overwrites its point instead of adding one.
"""

from __future__ import annotations

from common import protocol
from server.inventory import NOT_IN_TAGS, Tags

# InfluxDB's rules (line protocol reference, "Special characters"): in measurements, commas
# and spaces are escaped with a backslash; in tag keys, tag values and field keys, commas,
# equals signs and spaces; in string field values, double quotes and backslashes. The protocol
# carries no newline inside a value.
_MEASUREMENT_ESCAPE = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPE = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STR_ESCAPE = str.maketrans({'"': r'\"', "\\": "\\\\", "\n": " ", "\r": " "})


def measurement(name: str) -> str:
    return name.translate(_MEASUREMENT_ESCAPE)


def key(name: str) -> str:
    """A tag key or field key."""
    return name.translate(_KEY_ESCAPE)


def tag(value: str) -> str:
    """A tag value; a missing one is "none" (InfluxDB drops empty tags)."""
    if not value:
        return "none"
    # A backslash before an escapable character reads differently across InfluxDB versions, and
    # a newline ends the line: tag values (IDs and inventory names, validated at the edges) have none.
    if NOT_IN_TAGS.search(value):
        raise ValueError(f"tag value {value[:40]!r} holds a backslash or control character")
    return value.translate(_KEY_ESCAPE)


def string(value: str) -> str:
    """A string field value; a newline or carriage return becomes a space."""
    # Most strings need no escaping; four substring scans are far cheaper than translate().
    if '"' in value or "\\" in value or "\n" in value or "\r" in value:
        value = value.translate(_STR_ESCAPE)
    return f'"{value}"'


def tag_set(t: Tags) -> str:
    return (f",county={tag(t.county)},listed={'true' if t.listed else 'false'}"
            f",organisation={tag(t.organisation)},printer={tag(t.printer)},site={tag(t.site)}")


def point(name: str, tags: dict[str, str | None], pairs, ts: int) -> str:
    """One line: tags without a value are left out; so are fields without one."""
    tag_text = "".join(f",{key(k)}={tag(v)}" for k, v in tags.items() if v)
    return f"{measurement(name)}{tag_text} {_fields(pairs)} {ts}"


def _fields(pairs) -> str:
    out = []
    for name, value in pairs:
        if value is None:
            continue
        name = key(name)
        if isinstance(value, bool):
            out.append(f"{name}={'true' if value else 'false'}")
        elif isinstance(value, int):
            out.append(f"{name}={value}i")
        elif isinstance(value, float):
            out.append(f"{name}={value!r}")
        else:
            out.append(f"{name}={string(str(value))}")
    return ",".join(out)


def telemetry(msg: protocol.Telemetry, tags: str) -> str:
    # The hot path (one line per poll of every printer), so written out by hand instead of
    # through _fields(), each optional field's text made apart and the line joined once; the
    # output is the same (tests/unit/test_ingest_lineproto.py). Temperature keys are from a fixed
    # set: nothing to escape. The state is a Literal: nothing to escape either.
    x, quoted = msg.state_text, _STRING_TEXT.get
    state_text = f",state_text={quoted(x) or _quoted(x)}" if x else ""
    temps, known = "", _FLOAT_TEXT.get
    for name, temp in msg.temps.items():
        if (x := temp.actual) is not None:
            temps += f",{name}_actual={known(x) or _remembered(x)}"
        if (x := temp.target) is not None:
            temps += f",{name}_target={known(x) or _remembered(x)}"
    progress = "" if (x := msg.progress) is None else f",progress={float(x)!r}"
    print_time = "" if (x := msg.print_time) is None else f",print_time={float(x)!r}"
    time_left = "" if (x := msg.time_left) is None else f",time_left={float(x)!r}"
    file = "" if (x := msg.file) is None else f",file={quoted(x) or _quoted(x)}"
    user = "" if (x := msg.user) is None else f",user={quoted(x) or _quoted(x)}"
    filament = "" if (x := msg.filament_mm) is None else f",filament_mm={known(x) or _remembered(x)}"
    layer = "" if (x := msg.layer) is None else f",layer={x}i"
    layers = "" if (x := msg.layers) is None else f",layers={x}i"
    return (f'telemetry{tags} state="{msg.state}"{state_text},seq={msg.seq}i{temps}{progress}{print_time}'
            f"{time_left}{file}{user}{filament}{layer}{layers} {msg.ts}")


# Temperatures take few distinct values (a printer holds its target and its reading hovers near
# it), and so does a job's filament estimate: their text is remembered instead of made again by
# float repr, the dearest step of a telemetry line. A line's strings repeat too (a state's text, a
# job's file, its user's pseudonym; no raw user name: ingest puts the pseudonym in before it builds
# the line, server/ingest.py _store). Bounded; the ingest thread alone builds these lines.
_FLOAT_TEXT: dict[float, str] = {}
_FLOAT_TEXT_MAX = 4096
_STRING_TEXT: dict[str, str] = {}
_STRING_TEXT_MAX = 4096


def _remember(memory: dict, limit: int, value, text: str) -> str:
    if len(memory) >= limit:
        memory.clear()
    memory[value] = text
    return text


def _remembered(value: float) -> str:
    """``repr(float(value))``, remembered (the caller looked in _FLOAT_TEXT first)."""
    text = repr(float(value))
    # Not 0: -0.0 == 0.0 as a key, but they read differently.
    return _remember(_FLOAT_TEXT, _FLOAT_TEXT_MAX, value, text) if value else text


def _quoted(value: str) -> str:
    """``string(value)``, remembered (the caller looked in _STRING_TEXT first)."""
    return _remember(_STRING_TEXT, _STRING_TEXT_MAX, value, string(value))


def status(msg: protocol.Status, tags: str) -> str:
    pairs = [
        ("state", msg.state), ("prev_state", msg.prev_state or "none"), ("state_text", msg.state_text or None),
        ("error", msg.error), ("file", msg.file), ("agent", msg.agent), ("api", msg.api), ("seq", msg.seq),
    ]
    return f"state{tags} {_fields(pairs)} {msg.ts}"


def event(msg: protocol.Event, tags: str) -> str:
    pairs = [
        ("count", 1), ("file", msg.file), ("user", msg.user), ("duration", _float(msg.duration)),
        ("print_time", _float(msg.print_time)), ("filament_mm", _float(msg.filament_mm)),
        ("error", msg.error), ("job_started", msg.job_started), ("seq", msg.seq),
    ]
    return f"job{tags},kind={tag(msg.kind)} {_fields(pairs)} {msg.ts}"


def agent(msg: protocol.AgentStatus) -> str:
    pairs = [("state", msg.state), ("dropped", msg.dropped), ("printers", ",".join(msg.printers) or None),
             ("version", msg.version or None)]
    return f"agent,agent={tag(msg.agent)} {_fields(pairs)} {msg.ts}"


def _float(value: float | None) -> float | None:
    # Always a float field: InfluxDB fixes a field's type at its first write.
    return None if value is None else float(value)


def job_user(msg: protocol.Event, tags: str, name: str) -> str:
    """The raw user name of a job event, apart from the job point (which holds the pseudonym), so
    it can be purged on its own: same tags and time as the event's ``job`` point."""
    return f"job_user{tags},kind={tag(msg.kind)} user_name={string(name)} {msg.ts}"
