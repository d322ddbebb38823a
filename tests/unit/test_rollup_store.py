"""Rollup points as line protocol: written whole, overwritten in place, stale ones zeroed; and the
write barrier that keeps a run from reading InfluxDB before the data that triggered it is there."""

import threading

from server.reports import accounting as acc
from server.rollups.compute import Rollup, Row
from server.rollups.durable import WriteBarrier
from server.rollups.store import FIELDS, RollupStore

H = 3_600_000
TAGS = (("county", "Västerbotten"), ("organisation", "Umeå universitet"), ("printer", "a1"), ("site", "umu"))
OLD_TAGS = (("county", "Västerbotten"), ("organisation", "Old name"), ("printer", "a1"), ("site", "umu"))
B1 = (("county", "Norrbotten"), ("organisation", "LTU"), ("printer", "b1"), ("site", "lul"))


class FakeClient:
    def __init__(self, existing=()):
        self.existing, self.bodies, self.queries = list(existing), [], []

    def query(self, q):
        self.queries.append(q)
        series = [{"name": "utilisation", "tags": dict(tags), "columns": ["time", "in_network_ms"], "values": [[t, 1]]}
                  for tags, t in self.existing]
        return [{"statement_id": 0, "series": series}]

    def write(self, body, precision="ms", rp=None):
        assert rp == "rollups"
        self.bodies.append(body.decode())

    def lines(self):
        return "\n".join(self.bodies).split("\n")


def ms(**values):
    return dict.fromkeys(acc.CATEGORIES, 0) | values


def test_a_point_has_every_category_in_integer_milliseconds_plus_in_network_and_available():
    client = FakeClient()
    result = Rollup(0, 2 * H, [Row(0, TAGS, ms(printing=1000, idle=2000, unknown=600_000, not_in_network=7))])
    RollupStore(client).replace(result)
    (line,) = client.lines()
    assert line.startswith("utilisation,county=Västerbotten,organisation=Umeå\\ universitet,printer=a1,site=umu ")
    fields = dict(f.split("=") for f in line.split(" ")[-2].split(","))
    assert set(fields) == set(FIELDS) and all(v.endswith("i") for v in fields.values())
    assert fields["in_network_ms"] == f"{1000 + 2000 + 600_000}i" and fields["available_ms"] == "3000i"
    assert line.endswith(" 0")


def test_points_no_longer_produced_are_zeroed_and_other_printers_are_left_alone():
    """An inventory correction changes a printer's tags: its old series must not keep counting."""
    client = FakeClient(existing=[(OLD_TAGS, 0), (OLD_TAGS, H), (TAGS, 0), (B1, 0)])
    result = Rollup(0, 2 * H, [Row(0, TAGS, ms(idle=H)), Row(H, TAGS, ms(idle=H)), Row(0, B1, ms(idle=H))],
                    extents={(("umu", "a1"), 5): 99, (("lul", "b1"), 6): 77})
    written = RollupStore(client).replace(result, keys={("umu", "a1")})
    lines = client.lines()
    assert written == len(lines) == 2 + 2 + 1  # a1's two hours, two zeroed old-name points, a1's extent
    zeroed = [line for line in lines if "Old\\ name" in line]
    assert len(zeroed) == 2 and all("idle_ms=0i" in z and "in_network_ms=0i" in z for z in zeroed)
    assert not any("b1" in line for line in lines)
    assert "extent,printer=a1,site=umu until=99i 5" in lines
    assert '"printer" =~ /^(a1)$/' in client.queries[0] and "time >= 0ms AND time < 7200000ms" in client.queries[0]


class FakeWriter:
    def __init__(self):
        self.tokens = []

    def track(self, tokens):
        self.tokens += tokens

    def flush(self, block=True):
        return True


class FakeSpool(list):
    pass


def test_the_barrier_passes_once_the_writer_reports_its_token_durable_and_the_spool_is_empty():
    writer, spool = FakeWriter(), FakeSpool()
    barrier = WriteBarrier(writer, spool, timeout=5)
    passed = []
    thread = threading.Thread(target=lambda: passed.append(barrier()))
    thread.start()
    while not writer.tokens:
        pass
    acked = barrier.pick([1 << 16 | 1, writer.tokens[0], 1 << 16 | 2])
    thread.join(5)
    assert passed == [True] and acked == [1 << 16 | 1, 1 << 16 | 2]  # MQTT tokens go on to be acknowledged
    assert barrier.pick([1 << 16 | 3]) == [1 << 16 | 3]


def test_the_barrier_fails_while_the_spool_holds_data_or_the_token_does_not_come_back():
    writer, spool = FakeWriter(), FakeSpool([b"batch"])
    barrier = WriteBarrier(writer, spool, timeout=5)
    threading.Timer(0.05, lambda: barrier.pick(list(writer.tokens))).start()
    assert barrier() is False  # durable, but only in the spool
    assert WriteBarrier(FakeWriter(), FakeSpool(), timeout=0.05)() is False
