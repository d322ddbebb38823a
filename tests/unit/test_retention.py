"""The collector's hourly purge of raw user names: a database that is down is logged once, not hourly."""

import logging

from common.pseudonyms import Pseudonyms
from server.retention import HourlyPurge, key_line
from server.store.influx import InfluxError

PSEUDONYMS = Pseudonyms("0123456789abcdef0123456789abcdef")


class Database:
    def __init__(self):
        self.down = True
        self.queries: list[str] = []

    def query(self, q):
        if self.down:
            raise InfluxError("InfluxDB unreachable: ConnectTimeoutError")
        self.queries.append(q)
        return [{"statement_id": 0}]

    def write(self, body):
        raise AssertionError("nothing to rewrite")


def test_a_failing_purge_is_logged_once_until_it_works_again_and_cuts_at_the_configured_age(caplog):
    db = Database()
    purge = HourlyPurge(db, PSEUDONYMS, days=30, clock=lambda: 1_790_000_000.0)
    with caplog.at_level(logging.WARNING, logger="server.retention"):
        purge.run_once()
        purge.run_once()
        db.down = False
        purge.run_once()  # the positive control: it runs once the database answers
    assert len(caplog.records) == 1 and "retrying every hour" in caplog.records[0].getMessage()
    cutoff = 1_790_000_000_000 - 30 * 86_400_000
    assert f"DELETE FROM job_user WHERE time < {cutoff}ms" in db.queries


def test_the_key_line_names_the_secret_by_its_id_only():
    line = key_line(PSEUDONYMS, 5)
    assert line == f'privacy key_id="{PSEUDONYMS.key_id()}" 5' and "0123456789abcdef" not in line
