"""A report is made and written with the cyclic garbage collector paused (server/reports/generate.py:
millions of live objects rescanned cost seconds), and the collector is as it was afterwards,
also when the report fails."""

import gc

import pytest

from server.reports import generate


def test_the_collector_is_paused_during_a_report_and_resumes_after_it_even_on_failure(tmp_path):
    seen = []

    @generate._few_collections
    def report(fail: bool):
        seen.append(gc.isenabled())
        if fail:
            raise RuntimeError("influxd went away")
        return "done"

    assert gc.isenabled()
    assert report(False) == "done" and gc.isenabled()
    with pytest.raises(RuntimeError):
        report(True)
    assert seen == [False, False] and gc.isenabled()
    gc.disable()  # a caller that had it off (a forked child) keeps it off
    try:
        report(False)
        assert not gc.isenabled()
    finally:
        gc.enable()

