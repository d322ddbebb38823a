"""OctoPrint's state texts mapped onto printfarm's small state set."""

from __future__ import annotations

_EXACT = {
    "operational": "idle",
    "printing": "printing",
    "printing from sd": "printing",
    "sending file to sd": "idle",  # an upload to the printer's SD card, not a print
    "starting": "printing",
    "starting print from sd": "printing",
    "starting to send file to sd": "idle",
    "resuming": "printing",
    "pausing": "paused",
    "paused": "paused",
    "finishing": "finishing",
    "cancelling": "cancelling",
    "offline": "offline",
    "closed": "offline",
    "opening serial connection": "offline",
    "detecting serial connection": "offline",
    "detecting serial port": "offline",
    "detecting baudrate": "offline",
    "connecting": "offline",
    "transferring file to sd": "idle",
}


def normalise(text: str | None) -> str:
    """Map OctoPrint's state text (``/api/job`` ``state``) to a printfarm state."""
    key = (text or "").strip().lower()
    if key in _EXACT:
        return _EXACT[key]
    if key.startswith(("offline after error", "error", "closed with error")):
        return "error"
    if key.startswith("offline"):
        return "offline"
    # An unknown text: better "error" (someone looks) than silently "idle".
    return "error"
