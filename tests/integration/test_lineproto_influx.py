"""Arbitrary text through the collector's line protocol into a real InfluxDB and back: equal.

Every free-text field a printer or agent can send (state text, file, user, error, version) takes
any string; inventory names (organisation, county, which become tags) take any string the
inventory accepts; IDs any ID. The only documented change is the line protocol's own limit: a
newline or carriage return in a string field is stored as a space.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common import protocol as p
from devkit.servers import InfluxDB
from server import inventory, lineproto
from server.inventory import Tags

pytestmark = pytest.mark.integration

DB = "roundtrip"
TS = itertools.count(1_790_000_000_000)
ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True).filter(p.valid_id)
text = st.text(max_size=40)
# Organisation and county: any text; an example the inventory refuses is skipped (assume).
names = st.text(min_size=1, max_size=30)
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def influx(tmp_path_factory):
    with InfluxDB(tmp_path_factory.mktemp("influx")) as server:
        server.create_database(DB)
        yield server


def stored(influx, line: str, measurement: str, ts: int) -> dict:
    influx.write(DB, line)
    rows = influx.query(f'SELECT * FROM "{measurement}" WHERE time = {ts}ms GROUP BY *', db=DB)
    assert len(rows) == 1, (line, rows)
    return rows[0]


def as_stored(value: str) -> str:
    return value.replace("\n", " ").replace("\r", " ")


def listed_tags(printer, site, organisation, county) -> Tags:
    try:
        inv = inventory.from_dict({"sites": {site: {"organisation": organisation, "county": county}},
                                   "printers": {printer: {"site": site}}})
    except inventory.ConfigError:
        assume(False)  # refused with a config error naming the key: never reaches a line
    return inv.tags(site, printer)


@SETTINGS
@given(printer=ids, site=ids, organisation=names, county=names, state_text=text, file=text, user=text)
def test_telemetry_text_and_inventory_names_come_back_equal(influx, printer, site, organisation, county,
                                                             state_text, file, user):
    ts = next(TS)
    tags = listed_tags(printer, site, organisation, county)
    msg = p.Telemetry(v=1, ts=ts, printer=printer, site=site, seq=7, state="printing", state_text=state_text,
                      temps={"tool0": p.Temperature(210.5, 215.0)}, progress=12.5, file=file, user=user)
    row = stored(influx, lineproto.telemetry(msg, lineproto.tag_set(tags)), "telemetry", ts)
    assert (row["printer"], row["site"], row["organisation"], row["county"], row["listed"]) == (
        printer, site, organisation, county, "true")
    assert (row["file"], row["user"]) == (as_stored(file), as_stored(user))
    assert row.get("state_text") == (as_stored(state_text) if state_text else None)
    assert (row["tool0_actual"], row["tool0_target"], row["progress"], row["seq"]) == (210.5, 215.0, 12.5, 7)


@SETTINGS
@given(error=text, file=text, state_text=text, agent=ids)
def test_status_and_job_text_comes_back_equal(influx, error, file, state_text, agent):
    tags = listed_tags("p1", "lab", "Org", "County")
    ts = next(TS)
    status = p.Status(v=1, ts=ts, printer="p1", site="lab", seq=1, state="error", prev_state="printing",
                      state_text=state_text, error=error, file=file, agent=agent, api="octoprint")
    row = stored(influx, lineproto.status(status, lineproto.tag_set(tags)), "state", ts)
    assert (row["error"], row["file"], row["agent"]) == (as_stored(error), as_stored(file), agent)
    event = p.Event(v=1, ts=ts, printer="p1", site="lab", seq=2, kind="failed", file=file, user=state_text,
                    error=error, duration=3.5)
    row = stored(influx, lineproto.event(event, lineproto.tag_set(tags)), "job", ts)
    assert (row["kind"], row["error"], row["file"], row["user"]) == (
        "failed", as_stored(error), as_stored(file), as_stored(state_text))


@SETTINGS
@given(agent=ids, version=text.filter(bool), printers=st.lists(ids, max_size=3))
def test_agent_text_comes_back_equal(influx, agent, version, printers):
    ts = next(TS)
    msg = p.AgentStatus(v=1, ts=ts, agent=agent, state="online", dropped=3, printers=printers, version=version)
    row = stored(influx, lineproto.agent(msg), "agent", ts)
    assert (row["agent"], row["version"], row["dropped"]) == (agent, as_stored(version), 3)
    assert row.get("printers") == (",".join(printers) or None)


@SETTINGS
@given(message=text, organisation=names, rule=ids)
def test_alert_points_come_back_equal(influx, message, organisation, rule):
    ts = next(TS)
    organisation = listed_tags("p1", "lab", organisation, "County").organisation
    line = lineproto.point("alert", {"organisation": organisation, "rule": rule, "site": None},
                           [("message", message), ("notified", True)], ts)
    row = stored(influx, line, "alert", ts)
    assert (row["organisation"], row["rule"], row["message"], row["notified"]) == (
        organisation, rule, as_stored(message), True)
