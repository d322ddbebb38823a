"""The rollup job's failures: nothing is lost, nothing is done on old data, the job goes on."""

import json
import logging

from server import inventory as inventory_mod
from server.rollups.config import RollupsConfig
from server.rollups.dirty import DirtyMarks
from server.rollups.job import RollupJob
from server.store.influx import InfluxError

H = 3_600_000
INVENTORY = inventory_mod.from_dict({"sites": {"s": {"organisation": "o", "county": "c"}},
                                     "printers": {"a": {"site": "s"}}})


class FailingClient:
    def __init__(self, error: Exception):
        self.error, self.queries = error, 0

    def query(self, q, **kwargs):
        self.queries += 1
        raise self.error


def job(client, tmp_path, barrier=lambda: True) -> RollupJob:
    marks = DirtyMarks()
    marks.mark(("s", "a"), 5 * H)
    return RollupJob(client, INVENTORY, RollupsConfig(), marks=marks, barrier=barrier,
                     state_path=tmp_path / "rollups.json", clock=lambda: 100 * H / 1000)


def test_a_run_before_influxdb_holds_everything_reads_nothing_and_keeps_the_marks(tmp_path):
    (tmp_path / "rollups.json").write_text(json.dumps({"rolled_until": 90 * H}))
    client = FailingClient(AssertionError("must not be read"))
    rollups = job(client, tmp_path, barrier=lambda: False)
    assert rollups.run_once() is False
    assert client.queries == 0 and rollups.marks.pending() == {("s", "a"): 5 * H}
    assert "does not hold everything" in rollups.last_error
    # the hours it was about to roll up are announced: data for them arriving now marks its printer
    assert rollups.marks.rolled_until == 100 * H - H and rollups.rolled_until == 90 * H


def test_influxdb_down_or_a_bug_keeps_the_marks_logs_once_and_the_next_run_tries_again(tmp_path, caplog):
    for error in (InfluxError("InfluxDB unreachable: NewConnectionError"), KeyError("surprise")):
        caplog.clear()
        rollups = job(FailingClient(error), tmp_path)
        with caplog.at_level(logging.WARNING, logger="server.rollups.job"):
            assert rollups.run_once() is False and rollups.run_once() is False
        assert rollups.marks.pending() == {("s", "a"): 5 * H}
        assert len(caplog.records) == 1 and str(error.args[0]) in caplog.records[0].getMessage()


def test_marks_not_yet_handled_survive_a_restart_in_the_state_file(tmp_path):
    (tmp_path / "rollups.json").write_text(json.dumps({"rolled_until": 90 * H, "marks": [["s", "a", 7 * H]]}))
    rollups = RollupJob(FailingClient(InfluxError("down")), INVENTORY, RollupsConfig(),
                        state_path=tmp_path / "rollups.json")
    assert rollups.rolled_until == rollups.marks.rolled_until == 90 * H
    assert rollups.marks.pending() == {("s", "a"): 7 * H}
    rollups.marks.mark(("s", "b"), 8 * H)
    rollups.run_once()  # fails: both marks are kept, and saved
    saved = json.loads((tmp_path / "rollups.json").read_text())
    assert saved == {"rolled_until": 90 * H, "marks": [["s", "a", 7 * H], ["s", "b", 8 * H]]}


def test_the_collectors_rollups_make_the_databases_only_when_the_collectors_start_did_not(tmp_path, monkeypatch):
    # Per organisation, making them is ~70 queries: the first run repeats it only when it is needed.
    from server import config as server_config
    from server import rollups as rollups_mod
    from server.store.tenants import Tenants

    (tmp_path / "fleet.toml").write_text('[sites.s]\norganisation = "o"\ncounty = "c"\n')
    cfg = server_config.from_dict({"inventory": str(tmp_path / "fleet.toml"), "state_dir": str(tmp_path / "state"),
                                   "influx": {"layout": "organisations"}}, "server.toml")
    inventory = inventory_mod.load(cfg.inventory)
    made = []
    monkeypatch.setattr(Tenants, "ensure_all", lambda self: made.append(self.databases()))
    started = {"made": True}
    job = rollups_mod.from_server_config(cfg, inventory, writer=None, made=lambda: started["made"])
    job.prepare()
    assert made == []  # the collector's start made them
    started["made"] = False  # InfluxDB was down at the collector's start
    job.prepare()
    assert made == [["printfarm", "printfarm_o", "printfarm_unlisted"]]
