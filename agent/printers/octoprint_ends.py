"""How a job OctoPrint ran ended, judged by the adapter (the job tracker infers nothing).

OctoPrint's REST API keeps no job history. Seen live, the end shows in the states: a job that
went through "Cancelling" was cancelled, one that stopped in an error failed, and a finished
one leaves completion at 100 (``printer/standard.py`` ``on_comm_print_job_done``; a cancel
resets it). Not seen (the agent or OctoPrint was away), the file's statistics tell:
``/api/files/<origin>/<path>`` ``prints.last`` = {date, success}, written by
``filemanager.log_print`` as the job ends (success False for a cancel and a failure alike).

A cancel is not always a person's: with "on firmware error: cancel the print"
(``serial.disconnectOnErrors: false``), ``comm.py`` ``_handle_errors`` answers a firmware error
during a print with ``on_comm_error(error, "firmware", consequence="cancel")`` and
``cancelPrint``, which the states show as any cancel. ``GET /api/printer/error`` (OctoPrint's
``ErrorInformation``, cleared as a job starts and on connecting) tells them apart: asked once per
cancel, reason "firmware" with consequence "cancel" makes the job ``failed`` with its error.
"""

from __future__ import annotations

from typing import Callable

from agent.printers.base import Snapshot
from agent.printers.values import as_dict as _dict, number as _number, text as _text
from common.protocol import ACTIVE_STATES


class EndJudge:
    """Follows one printer's snapshots; sets ``ended`` (and ``ended_ts``) on the one after a job."""

    def __init__(self) -> None:
        self.last_active: Snapshot | None = None  # the last snapshot of a job under way
        self.unseen = True  # no answer since the agent started, or since OctoPrint last answered none

    def needs_record(self, snap: Snapshot) -> bool:
        """Whether the end can only be read from the file's statistics (the change was not seen)."""
        return self.unseen and snap.state not in ACTIVE_STATES and snap.state != "unreachable"

    def judge(self, snap: Snapshot, record: dict | None = None,
              last_error: Callable[[], dict | None] = lambda: None) -> None:
        """``record``: the file's statistics, when ``needs_record``; ``last_error``: asks
        OctoPrint's last error (``/api/printer/error``), called only for a job judged cancelled."""
        if snap.state == "unreachable":
            self.unseen = True
            return
        unseen, self.unseen = self.unseen, False
        if snap.state in ACTIVE_STATES:
            self.last_active = snap
            return
        last, self.last_active = self.last_active, None
        if unseen:
            _from_record(snap, record)
        elif last is not None:
            _from_states(snap, last)
        if snap.ended == "cancelled":
            _firmware_cancel(snap, last_error())


def _from_states(snap: Snapshot, last: Snapshot) -> None:
    if snap.state != "idle":
        snap.ended = "failed"  # "Error", "Offline after error", a lost serial port: the job is lost
    elif last.state == "cancelling" or not _complete(snap, last):
        snap.ended = "cancelled"
    else:
        snap.ended = "done"


def _from_record(snap: Snapshot, record: dict | None) -> None:
    last = _dict(_dict(_dict(record).get("prints")).get("last"))
    date = _number(last.get("date"))
    if date is None:
        return  # never printed, or no file selected: the tracker judges a lost job by itself
    snap.ended_ts = int(date * 1000)
    if last.get("success") is True:
        snap.ended = "done"
    else:  # OctoPrint records a cancel and a failure alike; an error keeps it out of "idle"
        snap.ended = "cancelled" if snap.state == "idle" else "failed"


def _firmware_cancel(snap: Snapshot, info: dict | None) -> None:
    info = _dict(info)
    if info.get("reason") == "firmware" and info.get("consequence") == "cancel":
        snap.ended = "failed"
        snap.ended_error = _text(info.get("error")) or "the printer's firmware reported an error"


def _complete(snap: Snapshot, last: Snapshot) -> bool:
    # OctoPrint leaves completion at 100 after a finished print; a cancel clears it.
    progress = snap.progress if snap.progress is not None else last.progress
    return progress is not None and progress >= 99.95
