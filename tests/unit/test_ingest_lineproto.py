"""The collector's lines equal lines built by a reference written from InfluxDB's line-protocol
reference ("Special characters"), not from server/lineproto.py:

- measurement: escape commas and spaces with a backslash;
- tag keys, tag values, field keys: escape commas, equals signs and spaces;
- string field values: in double quotes, escape double quotes and backslashes;
- integers end in ``i``; a line is ``measurement[,tags] fields timestamp``.

The reference escapes one character at a time, the plainest reading of those rules.
tests/integration/test_lineproto_influx.py writes the same lines into a real InfluxDB.
"""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import protocol as p
from server import lineproto
from server.inventory import Tags

# -- the reference ----------------------------------------------------------------------------


def _backslash_before(text: str, specials: str) -> str:
    return "".join("\\" + c if c in specials else c for c in text)


def ref_measurement(name: str) -> str:
    return _backslash_before(name, ", ")


def ref_key(name: str) -> str:
    return _backslash_before(name, ",= ")


def ref_string(text: str) -> str:
    # The protocol carries no newline in a value: the collector documents a space instead.
    text = text.replace("\n", " ").replace("\r", " ")
    return '"' + _backslash_before(text, '"\\') + '"'


def ref_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return ref_string(value)


def ref_line(measurement: str, tags: dict, fields: list, ts: int) -> str:
    tag_text = "".join(f",{ref_key(k)}={ref_key(v)}" for k, v in tags.items())
    field_text = ",".join(f"{ref_key(k)}={ref_value(v)}" for k, v in fields if v is not None)
    return f"{ref_measurement(measurement)}{tag_text} {field_text} {ts}"


def printer_tags(t: Tags) -> dict:
    return {"county": t.county, "listed": "true" if t.listed else "false", "organisation": t.organisation,
            "printer": t.printer, "site": t.site}


def num(value):
    return None if value is None else float(value)


def ref_telemetry(msg: p.Telemetry, t: Tags) -> str:
    fields = [("state", msg.state), ("state_text", msg.state_text or None), ("seq", msg.seq)]
    for name, temp in msg.temps.items():
        fields += [(f"{name}_actual", num(temp.actual)), (f"{name}_target", num(temp.target))]
    fields += [("progress", num(msg.progress)), ("print_time", num(msg.print_time)),
               ("time_left", num(msg.time_left)), ("file", msg.file), ("user", msg.user),
               ("filament_mm", num(msg.filament_mm)), ("layer", msg.layer), ("layers", msg.layers)]
    return ref_line("telemetry", printer_tags(t), fields, msg.ts)


def ref_status(msg: p.Status, t: Tags) -> str:
    fields = [("state", msg.state), ("prev_state", msg.prev_state or "none"), ("state_text", msg.state_text or None),
              ("error", msg.error), ("file", msg.file), ("agent", msg.agent), ("api", msg.api), ("seq", msg.seq)]
    return ref_line("state", printer_tags(t), fields, msg.ts)


def ref_event(msg: p.Event, t: Tags) -> str:
    fields = [("count", 1), ("file", msg.file), ("user", msg.user), ("duration", num(msg.duration)),
              ("print_time", num(msg.print_time)), ("filament_mm", num(msg.filament_mm)), ("error", msg.error),
              ("job_started", msg.job_started), ("seq", msg.seq)]
    return ref_line("job", {**printer_tags(t), "kind": msg.kind}, fields, msg.ts)


def ref_agent(msg: p.AgentStatus) -> str:
    fields = [("state", msg.state), ("dropped", msg.dropped), ("printers", ",".join(msg.printers) or None),
              ("version", msg.version or None)]
    return ref_line("agent", {"agent": msg.agent}, fields, msg.ts)


# -- strategies: what validation lets through -----------------------------------------------------

ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True).filter(p.valid_id)
# Inventory names: anything but a backslash or a control character (server.inventory refuses those).
names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\\x7f"), min_size=1,
                max_size=20).filter(str.strip)
text = st.text(max_size=30)
number = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6)
tag_sets = st.builds(Tags, printer=ids, site=ids, organisation=names, county=names, listed=st.booleans())


@settings(max_examples=300, deadline=None)
@given(t=tag_sets, state=st.sampled_from(p.STATES), state_text=text, seq=st.integers(0, 2**50),
       temps=st.dictionaries(st.sampled_from(["tool0", "tool1", "tool12", "bed", "chamber"]),
                             st.tuples(number, number), max_size=4),
       progress=number, print_time=number, time_left=number, file=st.none() | text, user=st.none() | text,
       filament=number, layer=st.none() | st.integers(0, 10**6), layers=st.none() | st.integers(0, 10**6))
def test_telemetry_lines_follow_influxdbs_rules(t, state, state_text, seq, temps, progress, print_time, time_left,
                                                file, user, filament, layer, layers):
    msg = p.Telemetry(v=1, ts=1_790_000_000_000, printer=t.printer, site=t.site, seq=seq, state=state,
                      state_text=state_text, temps={k: p.Temperature(*v) for k, v in temps.items()},
                      progress=progress, print_time=print_time, time_left=time_left, file=file, user=user,
                      filament_mm=filament, layer=layer, layers=layers)
    assert lineproto.telemetry(msg, lineproto.tag_set(t)) == ref_telemetry(msg, t)


@settings(max_examples=200, deadline=None)
@given(t=tag_sets, state=st.sampled_from(p.STATES), prev=st.none() | st.sampled_from(p.STATES), state_text=text,
       error=st.none() | text, file=st.none() | text, agent=st.none() | ids, api=st.none() | ids)
def test_status_lines_follow_influxdbs_rules(t, state, prev, state_text, error, file, agent, api):
    msg = p.Status(v=1, ts=1_790_000_000_000, printer=t.printer, site=t.site, seq=3, state=state, prev_state=prev,
                   state_text=state_text, error=error, file=file, agent=agent, api=api)
    assert lineproto.status(msg, lineproto.tag_set(t)) == ref_status(msg, t)


@settings(max_examples=200, deadline=None)
@given(t=tag_sets, kind=st.sampled_from(p.EVENT_KINDS), file=st.none() | text, user=st.none() | text,
       error=st.none() | text, duration=number, job_started=st.none() | st.integers(0, 2**50))
def test_job_event_lines_follow_influxdbs_rules(t, kind, file, user, error, duration, job_started):
    msg = p.Event(v=1, ts=1_790_000_000_000, printer=t.printer, site=t.site, seq=4, kind=kind, file=file,
                  user=user, duration=duration, print_time=duration, filament_mm=duration, error=error,
                  job_started=job_started)
    assert lineproto.event(msg, lineproto.tag_set(t)) == ref_event(msg, t)


@settings(max_examples=100, deadline=None)
@given(agent=ids, state=st.sampled_from(["online", "offline"]), dropped=st.integers(0, 2**40),
       printers=st.lists(ids, max_size=4), version=text)
def test_agent_lines_follow_influxdbs_rules(agent, state, dropped, printers, version):
    msg = p.AgentStatus(v=1, ts=1_790_000_000_000, agent=agent, state=state, dropped=dropped, printers=printers,
                        version=version)
    assert lineproto.agent(msg) == ref_agent(msg)


@settings(max_examples=200, deadline=None)
@given(tags=st.dictionaries(st.sampled_from(["rule", "site", "organisation", "a key", "k=v,w"]), names, max_size=4),
       fields=st.lists(st.tuples(st.sampled_from(["message", "a field", "x=y,z"]), text), max_size=3,
                       unique_by=lambda f: f[0]),
       name=st.sampled_from(["alert", "a measurement", "m,x"]))
def test_generic_points_follow_influxdbs_rules(tags, fields, name):
    line = lineproto.point(name, tags, [("notified", True), *fields], 1_790_000_000_000)
    assert line == ref_line(name, tags, [("notified", True), *fields], 1_790_000_000_000)


def test_the_cases_the_review_found_are_escaped():
    t = Tags(printer="p1", site="lab", organisation="Org, x=y z", county="Län", listed=True)
    assert lineproto.tag_set(t) == ",county=Län,listed=true,organisation=Org\\,\\ x\\=y\\ z,printer=p1,site=lab"
    assert lineproto.string('a "b" \\ c\nd\\') == '"a \\"b\\" \\\\ c d\\\\"'
    assert lineproto.key("tool0 x=1,y") == "tool0\\ x\\=1\\,y"


@pytest.mark.parametrize("value", ["Org\\,x", "end\\", "two\nlines", "cr\r", "nul\x00"])
def test_tag_values_that_no_influxdb_reads_alike_are_refused_not_mangled(value):
    with pytest.raises(ValueError):
        lineproto.tag(value)


@pytest.mark.parametrize("value", ["lab\n", "x\n", "a" * 64 + "\n"])
def test_an_id_with_a_trailing_newline_is_not_an_id(value):
    assert not p.valid_id(value) and p.id_problem(value)


@pytest.mark.parametrize("key", ["bed\n", "tool0\n", "x\n", "bed x", "tool0,a=1"])
def test_a_temperature_key_must_match_as_a_whole(key):
    """A key that is not a known sensor name as a whole never becomes a field key: it is left out."""
    payload = json.dumps({"v": 1, "ts": 1_790_000_000_000, "printer": "mk4-01", "site": "umu", "seq": 1,
                          "state": "idle", "temps": {key: [1, 2], "tool1": [3, 4]}}).encode()
    dropped = []
    msg = p.decode(p.parse_topic(p.printer_topic("umu", "mk4-01", "telemetry")), payload, 1_790_000_000_000, dropped)
    assert list(msg.temps) == ["tool1"] and dropped == [key]


@pytest.mark.parametrize("field,value", [("agent", "pi 1"), ("agent", "pi-1\n"), ("agent", "Pi,x=1"),
                                         ("api", "octoprint\n")])
def test_identifier_like_status_fields_must_be_ids(field, value):
    msg = p.Status(v=1, ts=1_790_000_000_000, printer="mk4-01", site="umu", seq=1, state="idle", **{field: value})
    with pytest.raises(p.Rejected) as info:
        p.decode(p.parse_topic(p.printer_topic("umu", "mk4-01", "status")), p.encode(msg), 1_790_000_000_000)
    assert info.value.reason == "invalid_schema"


def test_agent_status_printer_ids_must_be_ids():
    msg = p.AgentStatus(v=1, ts=1_790_000_000_000, agent="pi-1", state="online", printers=["p1", "p 2\n"])
    with pytest.raises(p.Rejected) as info:
        p.decode(p.parse_topic(p.agent_topic("pi-1")), p.encode(msg), 1_790_000_000_000)
    assert info.value.reason == "invalid_schema"


def test_floats_keep_every_digit():
    line = lineproto.telemetry(p.Telemetry(v=1, ts=1, printer="a", site="b", seq=1, state="idle",
                                           progress=math.pi), "")
    assert f"progress={math.pi!r}" in line


def _temps_line(*readings) -> str:
    temps = {"tool0": p.Temperature(*readings)}
    return lineproto.telemetry(p.Telemetry(v=1, ts=1, printer="a", site="b", seq=1, state="idle", temps=temps), "")


@pytest.mark.parametrize("first, then", [(0.0, -0.0), (-0.0, 0.0), (215, 215.0), (215.0, 215), (1e16, 1e16),
                                         (True, 1.0)])
def test_a_remembered_temperature_reads_as_a_fresh_one(first, then):
    """Temperatures' text is remembered (they repeat): equal keys that read differently must not mix."""
    assert _temps_line(first, first) == f"telemetry state=\"idle\",seq=1i,tool0_actual={ref_value(float(first))}" \
        f",tool0_target={ref_value(float(first))} 1"
    assert _temps_line(then, None) == f"telemetry state=\"idle\",seq=1i,tool0_actual={ref_value(float(then))} 1"


@pytest.mark.parametrize("first, then", [(0.0, -0.0), (-0.0, 0.0)])
def test_a_remembered_part_of_a_line_never_mixes_zero_and_minus_zero(first, then):
    """Parts of a line are remembered by their values, and 0.0 == -0.0: the same key, two texts."""
    for value in (first, then, first):
        msg = p.Telemetry(v=1, ts=1, printer="a", site="b", seq=1, state="printing", file="a.gcode",
                          filament_mm=value, temps={"bed": p.Temperature(value, 60.0)})
        line = lineproto.telemetry(msg, "")
        assert f"bed_actual={value!r}," in line and f"filament_mm={value!r} " in line


def test_the_memory_of_temperatures_stays_bounded():
    for i in range(lineproto._PARTS_MAX * 2):
        assert _temps_line(i + 0.5, None).endswith(f"tool0_actual={i + 0.5!r} 1")
        assert len(lineproto._PARTS) <= lineproto._PARTS_MAX


def _strings_line(text: str) -> str:
    msg = p.Telemetry(v=1, ts=1, printer="a", site="b", seq=1, state="idle", state_text=text, file=text, user=text)
    return lineproto.telemetry(msg, "")


@pytest.mark.parametrize("text", ['plain.gcode', 'a "quoted"\\ name', "two\nlines\r", "", "u-0123456789ab"])
def test_a_remembered_string_field_reads_as_a_fresh_one(text):
    """The strings of a telemetry line are remembered (they repeat): the same text either way."""
    quoted = lineproto.string(text)
    expected = (f'telemetry state="idle"{f",state_text={quoted}" if text else ""},seq=1i'
                f",file={quoted},user={quoted} 1")
    assert _strings_line(text) == expected  # made
    assert _strings_line(text) == expected  # remembered


def test_the_memory_of_string_fields_stays_bounded():
    for i in range(lineproto._PARTS_MAX * 2):
        assert _strings_line(f"job-{i}.gcode").endswith(f',user="job-{i}.gcode" 1')
        assert len(lineproto._PARTS) <= lineproto._PARTS_MAX
