"""The collector's subsystem registry: one lifecycle, started in order, stopped by stage."""

from server.subsystems import Subsystems


class Recorder:
    def __init__(self, name, stage, calls):
        self.name, self.stop_stage, self.calls = name, stage, calls

    def start(self):
        self.calls.append(("start", self.name))

    def stop(self):
        self.calls.append(("stop", self.name))

    def health(self):
        return {"name": self.name}


def registry(calls, off=()):
    stages = {"a": "before_writer", "b": "first", "c": "before_writer", "d": "last"}
    return {name: (lambda host, n=name, s=stage: None if n in off else Recorder(n, s, calls))
            for name, stage in stages.items()}


def test_subsystems_start_in_registry_order_and_stop_by_stage_in_reverse():
    calls = []
    subs = Subsystems(object(), registry(calls))
    subs.start()
    for stage in ("first", "before_writer", "last"):
        subs.stop(stage)
    assert calls == [("start", "a"), ("start", "b"), ("start", "c"), ("start", "d"),
                     ("stop", "b"), ("stop", "c"), ("stop", "a"), ("stop", "d")]


def test_a_subsystem_the_config_leaves_off_is_never_called_and_shows_none_in_health():
    calls = []
    subs = Subsystems(object(), registry(calls, off={"c"}))
    subs.start()
    assert ("start", "c") not in calls and subs.get("c") is None
    assert subs.health() == {"a": {"name": "a"}, "b": {"name": "b"}, "c": None, "d": {"name": "d"}}


def test_factories_get_the_host_to_hook_into():
    seen = []
    host = object()
    Subsystems(host, {"x": lambda h: seen.append(h)})
    assert seen == [host]
