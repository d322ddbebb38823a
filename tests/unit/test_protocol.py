import pytest

from common import protocol as p

NOW = 1_790_000_000_000


def telemetry(**over):
    base = dict(v=1, ts=NOW, printer="mk4-01", site="umu", seq=1, state="printing",
                temps={"tool0": p.Temperature(200.5, 210.0)}, progress=42.0)
    base.update(over)
    return p.Telemetry(**base)


def test_topic_is_built_and_parsed_in_one_place():
    topic = p.printer_topic("umu", "mk4-01", "telemetry")
    assert topic == "printfarm/v1/umu/mk4-01/telemetry"
    assert p.parse_topic(topic) == p.Topic("telemetry", "umu", "mk4-01", None)
    assert p.parse_topic(p.agent_topic("pi-1")) == p.Topic("agent", None, None, "pi-1")


@pytest.mark.parametrize("topic", [
    "printfarm/v1/umu/mk4-01/unknown", "printfarm/v2/umu/mk4-01/status", "printfarm/v1/UMU/x/status",
    "printfarm/v1/umu/mk4-01/status/extra", "other/v1/a/b/status", "printfarm/v1/agent/pi/telemetry",
])
def test_foreign_topics_are_not_parsed(topic):
    assert p.parse_topic(topic) is None


@pytest.mark.parametrize("value", ["a/b", "a+", "#", "", "Upper", "-x", "agent", "x" * 65])
def test_unsafe_ids_are_refused_with_a_reason(value):
    assert not p.valid_id(value)
    assert p.id_problem(value)


def test_round_trip_keeps_every_field():
    msg = telemetry(file="cube.gcode", user="operator", filament_mm=1234.5)
    topic = p.parse_topic(p.printer_topic("umu", "mk4-01", "telemetry"))
    assert p.decode(topic, p.encode(msg), NOW) == msg


@pytest.mark.parametrize("payload,reason", [
    (b"{not json", "malformed_json"),
    (b'{"v":1,"ts":"soon"}', "invalid_schema"),
    (b'{"v":9,"ts":1}', "unknown_version"),
    (b'{"v":1,"ts":1790000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"printing","progress":1e999}', "not_finite"),
    (b'{"v":1,"ts":1790000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"exploded"}', "invalid_schema"),
    (b'{"v":1,"ts":1790000000000,"printer":"other","site":"umu","seq":1,"state":"idle"}', "topic_mismatch"),
    (b'{"v":1,"ts":1890000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"idle"}', "future_timestamp"),
    (b'{"v":1,"ts":1000,"printer":"mk4-01","site":"umu","seq":1,"state":"idle"}', "bad_timestamp"),
    (b'{"v":1,"ts":1790000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"idle","progress":150}', "out_of_range"),
    (b'{"v":1,"ts":1790000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"idle","temps":{"tool0":"hot"}}', "invalid_schema"),
    (b'{"v":1,"ts":1790000000000,"printer":"mk4-01","site":"umu","seq":1,"state":"idle","temps":{"x y":[1,2],"bed":"hot"}}', "invalid_schema"),
    (b" " * (p.MAX_PAYLOAD_BYTES + 1), "too_large"),
])
def test_bad_payloads_are_rejected_with_a_reason(payload, reason):
    topic = p.parse_topic(p.printer_topic("umu", "mk4-01", "telemetry"))
    with pytest.raises(p.Rejected) as info:
        p.decode(topic, payload, NOW)
    assert info.value.reason == reason


def test_unknown_sensor_names_are_left_out_and_listed_not_a_reason_to_refuse_the_message():
    topic = p.parse_topic(p.printer_topic("umu", "mk4-01", "telemetry"))
    payload = p.encode(telemetry()).replace(b'"temps":{', b'"temps":{"tool_heatbreak":[45,null],"x y":[1,2],"Bed":9,')
    dropped = []
    msg = p.decode(topic, payload, NOW, dropped)
    assert msg == telemetry() and dropped == ["tool_heatbreak", "x y", "Bed"]
    assert p.decode(topic, payload, NOW).temps == telemetry().temps  # no list: left out all the same


def test_agent_status_must_match_its_topic():
    msg = p.AgentStatus(v=1, ts=NOW, agent="pi-2", state="online")
    with pytest.raises(p.Rejected, match="topic_mismatch"):
        p.decode(p.parse_topic(p.agent_topic("pi-1")), p.encode(msg), NOW)


def test_layers_round_trip_and_out_of_range_layers_are_refused():
    topic = p.parse_topic(p.printer_topic("umu", "mk4-01", "telemetry"))
    msg = telemetry(layer=12, layers=240)
    assert p.decode(topic, p.encode(msg), NOW) == msg
    for bad in (b'"layer":-1', b'"layers":10000001', b'"layer":2.5'):
        payload = p.encode(telemetry()).replace(b'"seq":1', b'"seq":1,' + bad)
        with pytest.raises(p.Rejected) as err:
            p.decode(topic, payload, NOW)
        assert err.value.reason == "invalid_schema"
