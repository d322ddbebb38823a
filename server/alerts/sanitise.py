"""Printer-supplied text (file names, error and state texts) made safe for chat receivers.

Slack, Teams, Discord, Telegram and mail render markup: a file named ``<!channel>.gcode`` or
``@everyone.gcode`` would ping a whole channel, ``[invoice](http://…)`` would become a link.
The engine cleans every such text once, where it enters, so messages, details, the webhook's
JSON and the log lines built from them all carry the clean version.
"""

from __future__ import annotations

import re
from functools import lru_cache

from common.text import one_line

MAX_TEXT = 200  # characters of one printer-supplied text in a notification
_LINKS = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # markdown links and images: keep their text
_TAGS = re.compile(r"<[^<>]*>")  # HTML, and Slack's <!channel>, <@U123>, <http://x|text>
_MENTION = re.compile(r"(?<![\w.])@(?=\w)")  # @everyone, @here, @someone; not user@example.org


@lru_cache(maxsize=4096)  # the same texts come with every message of a printer
def clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = _TAGS.sub("", _LINKS.sub(r"\1", text))
    text = _MENTION.sub("", text).replace("<", "").replace(">", "")
    return one_line(text, MAX_TEXT).strip()
