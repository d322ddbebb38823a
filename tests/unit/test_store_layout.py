"""Retention policies: config checks, and which lines go to which policy when telemetry has its own."""

import pytest

from common.configkit import ConfigError
from server import config as server_config
from server.store import layout
from server.store.influx import InfluxHTTP

TELEMETRY = b'telemetry,printer=a,site=s state="idle",seq=1i 1000'
STATE = b'state,printer=a,site=s state="idle",prev_state="none",seq=2i 1000'
JOB = b'job,printer=a,site=s,kind=done count=1i 2000'


def test_telemetry_lines_are_split_from_the_rest_in_order():
    telemetry, other = layout.split_telemetry(b"\n".join([STATE, TELEMETRY, JOB, TELEMETRY.replace(b"1000", b"1001")]))
    assert telemetry.split(b"\n") == [TELEMETRY, TELEMETRY.replace(b"1000", b"1001")]
    assert other.split(b"\n") == [STATE, JOB]


def test_a_body_without_telemetry_passes_whole():
    assert layout.split_telemetry(STATE + b"\n" + JOB) == (b"", STATE + b"\n" + JOB)
    # a field or tag that merely mentions telemetry is not a telemetry line
    other = b'job,printer=telemetry,site=s file="telemetry,x" 1'
    assert layout.split_telemetry(other) == (b"", other)


def test_routed_writes_send_telemetry_to_the_default_policy_and_the_rest_to_autogen(monkeypatch):
    sent = []
    monkeypatch.setattr(InfluxHTTP, "write", lambda self, body, precision="ms", rp=None: sent.append((rp, body)))
    client = layout.RoutedInflux("http://127.0.0.1:1", "db")
    client.write(b"\n".join([TELEMETRY, STATE, JOB]))
    assert sent == [(None, TELEMETRY), ("autogen", STATE + b"\n" + JOB)]
    sent.clear()
    client.write(STATE)
    assert sent == [("autogen", STATE)]


@pytest.mark.parametrize("key, value, problem", [
    ("telemetry", "30 days", "is not an InfluxDB duration"),
    ("rollups", "5y", "is not an InfluxDB duration"),
    ("telemetry", "30m", "is not an InfluxDB duration"),
    ("telemetry", "0h", "shorter than InfluxDB's minimum"),
])
def test_a_bad_duration_names_the_key_and_the_fix(key, value, problem):
    with pytest.raises(ConfigError) as err:
        server_config.from_dict({"inventory": "fleet.toml", "retention": {key: value}})
    assert err.value.key == f"retention.{key}" and problem in err.value.problem and "h" in err.value.fix


def test_telemetry_is_routed_only_when_it_has_a_retention_of_its_own():
    assert not server_config.from_dict({"inventory": "f"}).retention.routed
    cfg = server_config.from_dict({"inventory": "f", "retention": {"telemetry": "30d", "rollups": "520w"}})
    assert cfg.retention.routed and cfg.retention.rollups == "520w"
