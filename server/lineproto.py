"""InfluxDB line protocol for printfarm's messages, built as plain strings.

Measurements (timestamps are the printer's sample time, in ms):

- ``telemetry``  one point per poll
- ``state``      one point per state change: state, prev_state, state_text, error, coalesced
- ``job``        one point per job event; tag ``kind`` (started, done, failed, ...); with the job's
                 material where the printer told it (``material``, ``material_source``, ``grams``,
                 ``mm``, per tool ``material_use``: docs/materials.md)
- ``agent``      agent online/offline and its outbox drop count
- ``rejected``   (written by the collector itself) counts of rejected messages

Printer points carry the tags printer, site, organisation, county and listed
(``false`` for a printer missing from the inventory). A redelivered message has
the same series and time, so it overwrites its point instead of adding one.
"""

from __future__ import annotations

import msgspec

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
    # through _fields(); the output is the same (tests/unit/test_ingest_lineproto.py). Most of a
    # line repeats from one poll to the next: the state and its text, each heater's reading and
    # target, the job's file, user, filament and layers. Those parts' text is remembered by their
    # values (_PARTS); what changes on every poll (seq, progress, times, ts) is made each time.
    remembered = _PARTS.get
    if (head := remembered(key := (msg.state, msg.state_text))) is None:
        head = _part(key, _head)
    temps = ""
    for name, temp in msg.temps.items():
        if (text := remembered(key := (name, temp.actual, temp.target))) is None:
            text = _part(key, _temp)
        temps += text
    if (tail := remembered(key := (msg.file, msg.user, msg.filament_mm, msg.layer, msg.layers))) is None:
        tail = _part(key, _tail)
    progress = "" if (x := msg.progress) is None else f",progress={float(x)!r}"
    print_time = "" if (x := msg.print_time) is None else f",print_time={float(x)!r}"
    time_left = "" if (x := msg.time_left) is None else f",time_left={float(x)!r}"
    return f"telemetry{tags} {head},seq={msg.seq}i{temps}{progress}{print_time}{time_left}{tail} {msg.ts}"


# The remembered parts of telemetry lines, by the values they are made of (no raw user name among
# them: ingest puts the pseudonym in before it builds the line, server/ingest.py _store). Bounded;
# the ingest thread alone builds these lines.
_PARTS: dict[tuple, str] = {}
_PARTS_MAX = 8192


def _part(key: tuple, make) -> str:
    """``make(*key)``, remembered unless the key holds a 0: -0.0 == 0.0 as a key, but they read
    differently (a heater that is off, a job's first poll: cheap to make anyway)."""
    text = make(*key)
    if 0 not in key:
        if len(_PARTS) >= _PARTS_MAX:
            _PARTS.clear()
        _PARTS[key] = text
    return text


def _head(state: str, state_text: str | None) -> str:
    # The state is a Literal: nothing to escape.
    return f'state="{state}",state_text={string(state_text)}' if state_text else f'state="{state}"'


def _temp(name: str, actual, target) -> str:
    # Temperature keys are from a fixed set: nothing to escape.
    return ("" if actual is None else f",{name}_actual={float(actual)!r}") + \
        ("" if target is None else f",{name}_target={float(target)!r}")


def _tail(file, user, filament, layer, layers) -> str:
    return ("" if file is None else f",file={string(file)}") + ("" if user is None else f",user={string(user)}") + \
        ("" if filament is None else f",filament_mm={float(filament)!r}") + \
        ("" if layer is None else f",layer={layer}i") + ("" if layers is None else f",layers={layers}i")


def status(msg: protocol.Status, tags: str) -> str:
    pairs = [
        ("state", msg.state), ("prev_state", msg.prev_state or "none"), ("state_text", msg.state_text or None),
        ("error", msg.error), ("file", msg.file), ("agent", msg.agent), ("api", msg.api), ("seq", msg.seq),
        ("coalesced", msg.coalesced or None),  # changes the agent's rate limit folded into this one
    ]
    return f"state{tags} {_fields(pairs)} {msg.ts}"


def status_network(msg: protocol.Status, tags: str) -> str:
    """``status`` for the network's database: no file name."""
    pairs = [
        ("state", msg.state), ("prev_state", msg.prev_state or "none"), ("state_text", msg.state_text or None),
        ("error", msg.error), ("agent", msg.agent), ("api", msg.api), ("seq", msg.seq),
    ]
    return f"state{tags} {_fields(pairs)} {msg.ts}"


def event(msg: protocol.Event, tags: str) -> str:
    pairs = [
        ("count", 1), ("file", msg.file), ("user", msg.user), ("duration", _float(msg.duration)),
        ("print_time", _float(msg.print_time)), ("filament_mm", _float(msg.filament_mm)),
        ("error", msg.error), ("job_started", msg.job_started), ("seq", msg.seq), *_material(msg),
    ]
    return f"job{tags},kind={tag(msg.kind)} {_fields(pairs)} {msg.ts}"


def event_network(msg: protocol.Event, tags: str) -> str:
    """``event`` for the network's database: outcome and duration, no file name and no user."""
    pairs = [
        ("count", 1), ("duration", _float(msg.duration)), ("print_time", _float(msg.print_time)),
        ("filament_mm", _float(msg.filament_mm)), ("error", msg.error), ("job_started", msg.job_started),
        ("seq", msg.seq), *_material(msg),  # amounts and types are figures, not secrets (contract)
    ]
    return f"job{tags},kind={tag(msg.kind)} {_fields(pairs)} {msg.ts}"


def _material(msg: protocol.Event) -> list[tuple[str, object]]:
    """The job's progress at its end and its material, as the printer gave them (whole-job
    amounts; the reports count a failed job's slicer estimate pro rata). Unknown stays absent,
    never 0: ``grams``/``mm`` only where a tool told them. ``material_use`` keeps every tool's
    type, colour, source and amounts (JSON) for the reports' per-material prices and densities."""
    use = msg.material
    if not use:
        return [("progress", _float(msg.progress))]
    types = [u.type for u in use if u.type]
    sources = {u.source for u in use}
    grams = [u.grams for u in use if u.grams is not None]
    mm = [u.mm for u in use if u.mm is not None]
    return [("progress", _float(msg.progress)), ("material", "+".join(types) or None),
            ("material_source", sources.pop() if len(sources) == 1 else "mixed"),
            ("grams", float(sum(grams)) if grams else None), ("mm", float(sum(mm)) if mm else None),
            ("material_use", msgspec.json.encode(use).decode())]


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
