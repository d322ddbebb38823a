"""A scripted fleet: what each printer did when, sent as the MQTT messages an agent would have
sent, and the ground truth computed from the script's own intervals (not from the messages and not
with the report code). Shared by the report tests."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol

H = 3_600_000
TELEMETRY_EVERY = 30 * 60_000
# 2026-Q3 in Europe/Stockholm (CEST, UTC+2): 2026-06-30 22:00 UTC up to 2026-09-30 22:00 UTC.
Q3_START, Q3_END = 1_782_856_800_000, 1_790_805_600_000
CATEGORY = {"printing": "printing", "finishing": "printing", "cancelling": "printing", "paused": "paused",
            "idle": "idle", "error": "error", "offline": "offline", "unreachable": "offline"}


def t(text: str) -> int:
    """'07-15 09:00' (UTC, 2026), or with its year '2025-03-10 09:00' (UTC) -> ms."""
    full = text if len(text.split(" ")[0]) == 10 else f"2026-{text}"
    return int(datetime.strptime(full, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp() * 1000)


@dataclass
class Job:
    kind: str
    at: str
    user: str = ""
    started: str | None = None  # on end events: when the job started
    filament_mm: float | None = None
    file: str | None = None  # default: <printer>-<start>.gcode
    material: list = field(default_factory=list)  # protocol.MaterialUse of the job
    progress: float | None = None  # at the job's end
    error: str | None = None


@dataclass
class Session:
    """An agent session: data from ``start`` to ``end`` (its last data), states as (time, state)."""

    start: str
    end: str
    states: list[tuple[str, str]]
    jobs: list[Job] = field(default_factory=list)


@dataclass
class Printer:
    site: str
    id: str
    agent: str
    sessions: list[Session]
    duplicate: bool = False  # send every status and event message twice
    late: tuple[str, str] | None = None  # messages in this window are sent last, as an outbox replays
    telemetry_every: int = TELEMETRY_EVERY  # ms between telemetry samples


def messages(p: Printer) -> list[tuple[int, str, bytes]]:
    """(ts, topic, payload) for one printer's script, in time order."""
    out, seq = [], 0

    def add(channel, msg):
        out.append((msg.ts, protocol.printer_topic(p.site, p.id, channel), protocol.encode(msg)))

    for s in p.sessions:
        start, end = t(s.start), t(s.end)
        changes = [(t(at), state) for at, state in s.states]
        agent_topic = protocol.agent_topic(p.agent)
        out.append((start, agent_topic, protocol.encode(protocol.AgentStatus(
            v=1, ts=start, agent=p.agent, state="online", printers=[p.id]))))
        stamps = sorted(set(range(start, end + 1, p.telemetry_every)) | {end} | {ts for ts, _ in changes}
                        | {ts + 10_000 for ts in (Q3_START, Q3_END) if start <= ts + 10_000 <= end})
        prev = None
        for ts in stamps:
            state = [st for at, st in changes if at <= ts][-1]
            seq += 1
            add("telemetry", protocol.Telemetry(v=1, ts=ts, printer=p.id, site=p.site, seq=seq, state=state))
            change = next((st for at, st in changes if at == ts), None)
            if change is not None:
                seq += 1
                add("status", protocol.Status(v=1, ts=ts, printer=p.id, site=p.site, seq=seq, state=change,
                                              prev_state=prev, agent=p.agent))
                prev = change
        for job in s.jobs:
            seq += 1
            ts = t(job.at)
            duration = (ts - t(job.started)) / 1000 if job.started else None
            add("event", protocol.Event(v=1, ts=ts, printer=p.id, site=p.site, seq=seq, kind=job.kind, user=job.user,
                                        file=job.file or f"{p.id}-{job.started or job.at}.gcode", filament_mm=job.filament_mm,
                                        duration=duration, job_started=t(job.started) if job.started else None,
                                        material=job.material, progress=job.progress, error=job.error))
    out.sort(key=lambda m: m[0])
    return out


def send_order(p: Printer) -> list[tuple[str, bytes]]:
    msgs = messages(p)
    if p.late:
        low, high = t(p.late[0]), t(p.late[1])
        msgs = [m for m in msgs if not low <= m[0] < high] + [m for m in msgs if low <= m[0] < high]
    out = []
    for _, topic, payload in msgs:
        out.append((topic, payload))
        if p.duplicate and not topic.endswith("/telemetry"):
            out.append((topic, payload))
    return out


def publish(broker, items: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-script")
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos = []
    for topic, payload in items:
        info = client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        infos.append(info)
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()


def _clip(a: int, b: int, low: int, high: int) -> int:
    return max(0, min(b, high) - max(a, low))


def truth_hours(p: Printer, low: int = Q3_START, high: int = Q3_END) -> dict[str, int]:
    """Milliseconds per category over [low, high) from the script's intervals."""
    ms = dict.fromkeys(("printing", "paused", "idle", "error", "offline", "unknown", "not_in_network"), 0)
    first = t(p.sessions[0].start)
    ms["not_in_network"] += _clip(low, first, low, high)
    covered_until = first
    for s in p.sessions:
        ms["unknown"] += _clip(covered_until, t(s.start), low, high)
        bounds = [t(at) for at, _ in s.states] + [t(s.end)]
        for (at, state), stop in zip(s.states, bounds[1:]):
            ms[CATEGORY[state]] += _clip(t(at), stop, low, high)
        covered_until = t(s.end)
    ms["unknown"] += _clip(covered_until, high, low, high)
    return ms


@contextmanager
def reports_of(tmp: Path, write_inventory: Callable[[Path], Path], fleet: list[Printer],
               period: str = "2026-Q3") -> Iterator[tuple[Path, object, Path]]:
    """The scripted ``fleet`` through a real broker, collector and InfluxDB, then ``period``'s
    report in English and Swedish by ``printfarm-server report`` (with the collector's state_dir:
    the same pseudonym secret). Yields (the reports' folder, the InfluxDB, the inventory)."""
    from devkit.pipeline import DB, RunningCollector, collector_config, wait_for
    from devkit.servers import InfluxDB, Mosquitto
    from server.__main__ import main as server_main

    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb") as influx:
        inventory = write_inventory(tmp / "fleet.toml")
        cfg = collector_config(tmp, broker, influx, inventory)
        collector = RunningCollector(cfg)
        try:
            collector.wait_connected()
            publish(broker, [m for p in fleet for m in send_order(p)])
            events = sum(len(s.jobs) for p in fleet for s in p.sessions)
            wait_for(lambda: job_points(influx, DB) == events, 30, "every job event in InfluxDB")
        finally:
            collector.stop()
        config = tmp / "server.toml"
        config.write_text(f'inventory = "{inventory}"\nstate_dir = "{cfg.state_dir}"\n'
                          f'[influx]\nurl = "{influx.url}"\ndatabase = "{DB}"\nspool_dir = "{tmp / "spool"}"\n'
                          '[reports]\nnetwork_name = "ACES"\n')
        out = tmp / "out"
        for lang in ("en", "sv"):
            assert server_main(["report", "-c", str(config), "--out", str(out), "--no-progress", "--period",
                                period, "--lang", lang]) == 0
        yield out, influx, inventory


def job_points(influx, db: str) -> int:
    found = influx.query("SELECT count(seq) AS n FROM job", db=db)
    return found[0]["n"] if found else 0
