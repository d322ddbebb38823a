"""Property-based tests of common.protocol.decode: the collector's first line of defence.

Whatever arrives, decode either returns a sound message or raises Rejected with a reason;
and every valid message survives encode -> decode unchanged.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import protocol as p

NOW = 1_790_000_000_000
REASONS = {"too_large", "malformed_json", "invalid_schema", "unknown_version", "not_finite", "out_of_range",
           "bad_timestamp", "future_timestamp", "topic_mismatch"}
TOPICS = [p.parse_topic(p.printer_topic("umu", "mk4-01", kind)) for kind in p.PRINTER_CHANNELS]
TOPICS.append(p.parse_topic(p.agent_topic("pi-1")))
FIELD_NAMES = ["v", "ts", "printer", "site", "seq", "state", "prev_state", "state_text", "temps", "progress",
               "print_time", "time_left", "file", "user", "filament_mm", "kind", "duration", "error",
               "job_started", "agent", "dropped", "printers", "version", "tool0", "bed"]

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8),
                                                                inner, max_size=6),
    max_leaves=20,
)


def decode_or_reason(topic, payload: bytes):
    try:
        return p.decode(topic, payload, NOW)
    except p.Rejected as exc:
        assert exc.reason in REASONS, exc.reason
        return exc.reason


@PROFILE
@given(topic=st.sampled_from(TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_are_rejected_never_raised(topic, payload):
    decode_or_reason(topic, payload)


@PROFILE
@given(topic=st.sampled_from(TOPICS), value=json_values)
def test_any_json_document_is_decoded_or_rejected(topic, value):
    # json.dumps writes NaN/Infinity literals, which are not JSON: those must be rejected too.
    decode_or_reason(topic, json.dumps(value).encode())


def _valid_base(kind: str) -> dict:
    if kind == "agent":
        return {"v": 1, "ts": NOW, "agent": "pi-1", "state": "online"}
    base = {"v": 1, "ts": NOW, "printer": "mk4-01", "site": "umu", "seq": 1}
    return base | {"telemetry": {"state": "printing"}, "status": {"state": "idle"}, "event": {"kind": "done"}, "info": {}}[kind]


@PROFILE
@given(topic=st.sampled_from(TOPICS), key=st.sampled_from(FIELD_NAMES), value=json_values)
def test_a_valid_message_with_one_field_replaced_is_decoded_or_rejected(topic, key, value):
    doc = _valid_base(topic.kind)
    doc[key] = value
    result = decode_or_reason(topic, json.dumps(doc).encode())
    if isinstance(result, p.Telemetry):
        for temp in result.temps.values():
            assert all(x is None or math.isfinite(x) for x in (temp.actual, temp.target))
        assert result.progress is None or 0 <= result.progress <= 100


ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z").filter(p.valid_id)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
maybe = lambda s: st.none() | s  # noqa: E731
texts = st.text(max_size=40)
ts = st.integers(min_value=p.MIN_TS_MS, max_value=NOW)
temps = st.dictionaries(st.sampled_from(["tool0", "tool1", "bed", "chamber"]),
                        st.builds(p.Temperature, maybe(finite), maybe(finite)), max_size=4)


@st.composite
def valid_messages(draw):
    site, printer = draw(ids), draw(ids)
    common = dict(v=1, ts=draw(ts), printer=printer, site=site, seq=draw(st.integers(0, 2**40)))
    kind = draw(st.sampled_from(["telemetry", "status", "event", "agent"]))
    if kind == "telemetry":
        msg = p.Telemetry(**common, state=draw(st.sampled_from(p.STATES)), state_text=draw(texts),
                          temps=draw(temps), progress=draw(maybe(st.floats(0, 100))), print_time=draw(maybe(finite)),
                          time_left=draw(maybe(finite)), file=draw(maybe(texts)), user=draw(maybe(texts)),
                          filament_mm=draw(maybe(finite)))
    elif kind == "status":
        msg = p.Status(**common, state=draw(st.sampled_from(p.STATES)),
                       prev_state=draw(maybe(st.sampled_from(p.STATES))), state_text=draw(texts),
                       error=draw(maybe(texts)), file=draw(maybe(texts)), agent=draw(maybe(ids)))
    elif kind == "event":
        msg = p.Event(**common, kind=draw(st.sampled_from(p.EVENT_KINDS)), file=draw(maybe(texts)),
                      user=draw(maybe(texts)), duration=draw(maybe(finite)), print_time=draw(maybe(finite)),
                      filament_mm=draw(maybe(finite)), error=draw(maybe(texts)), job_started=draw(maybe(ts)))
    else:
        agent = draw(ids)
        msg = p.AgentStatus(v=1, ts=common["ts"], agent=agent, state=draw(st.sampled_from(["online", "offline"])),
                            dropped=draw(st.integers(0, 2**31)), printers=draw(st.lists(ids, max_size=3)),
                            version=draw(texts))
        return p.parse_topic(p.agent_topic(agent)), msg
    return p.parse_topic(p.printer_topic(site, printer, kind)), msg


@PROFILE
@given(valid_messages())
def test_valid_messages_round_trip(topic_and_msg):
    topic, msg = topic_and_msg
    assert p.decode(topic, p.encode(msg), NOW) == msg


EDGES = [p.MIN_TS_MS - 1, p.MIN_TS_MS, NOW, NOW + p.MAX_FUTURE_MS, NOW + p.MAX_FUTURE_MS + 1]


@PROFILE
@given(topic_and_msg=valid_messages(), version=st.sampled_from([1, 1, 0, 2]), when=st.sampled_from(EDGES) | ts,
       elsewhere=st.sampled_from([None, "site", "printer"]))
def test_version_time_and_topic_are_checked_in_this_order_for_every_kind(topic_and_msg, version, when, elsewhere):
    """The rules as the module states them, applied to each kind of message; decode takes the
    usual message (telemetry, events) through a quicker test than the others, with the same outcome."""
    topic, msg = topic_and_msg
    msg.v, msg.ts = version, when
    if elsewhere and topic.kind == "agent":
        topic = p.parse_topic(p.agent_topic(topic.agent + "x"))
    elif elsewhere:
        site, printer = (topic.site + "x", topic.printer) if elsewhere == "site" else (topic.site, topic.printer + "x")
        topic = p.parse_topic(p.printer_topic(site, printer, topic.kind))
    expected = ("unknown_version" if version != 1 else "bad_timestamp" if when < p.MIN_TS_MS
                else "future_timestamp" if when > NOW + p.MAX_FUTURE_MS else "topic_mismatch" if elsewhere else msg)
    assert decode_or_reason(topic, p.encode(msg)) == expected


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.kind)
@pytest.mark.parametrize("version, when, expected", [
    (1, p.MIN_TS_MS - 1, "bad_timestamp"), (1, p.MIN_TS_MS, None), (1, NOW + p.MAX_FUTURE_MS, None),
    (1, NOW + p.MAX_FUTURE_MS + 1, "future_timestamp"), (2, NOW, "unknown_version"), (0, NOW, "unknown_version"),
])
def test_the_edges_of_version_and_time_for_every_kind(topic, version, when, expected):
    doc = _valid_base(topic.kind) | {"v": version, "ts": when}
    result = decode_or_reason(topic, json.dumps(doc).encode())
    assert result == expected if expected else result.ts == when


@pytest.mark.parametrize("field", ["api", "agent"])
def test_a_status_naming_its_agent_or_api_with_a_non_id_is_refused(field):
    doc = _valid_base("status") | {field: "Not An ID"}
    assert decode_or_reason(TOPICS[0], json.dumps(doc).encode()) == "invalid_schema"
