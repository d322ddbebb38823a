"""Text that a person will see, from printers, agents and the inventory: one rule for all of it.

A printer's file name, error or state text, and a name in the inventory, end up in a terminal
(the demo table, log lines), a web page, chat and mail notifications, spreadsheets and a PDF.
Each of those runs something hidden in text: a terminal runs escape sequences (C0 ``ESC`` or the
C1 ``CSI`` U+009B: set the window title, clear the screen, make OSC-8 links), a bidirectional
override (U+202E) shows text in another order than it is stored, Markdown and HTML make links
and pings, matplotlib runs ``$...$`` as mathtext.

**Where text enters**, it is made ``plain``: no control character (C0, DEL, C1; line breaks and
tabs become one space), no bidirectional formatting character, no lone surrogate. The collector's
ingest does this to every printer text before anything stores or shows it (server/ingest.py);
the inventory refuses names that would need it (``name_problem``), naming the key.

**At each output**, that output's own markup is escaped:

=====================  ===========================================================================
logs                   ``one_line``: plain, and cut
notifications          ``chat``: plain, no Markdown or HTML link in any nesting, no bare URL or
                       domain, no HTML entity, no @-mention; cut (server/alerts/)
status page            HTML-escaped by the page's ``esc``, its Content-Security-Policy runs only
                       its own script (server/web/status.html, server/api.py)
terminal (demo table)  every cell a rich ``Text``, never parsed as rich markup
XLSX / CSV             ``plain`` cells written as strings; CSV formulas get an apostrophe
PDF                    ``no_mathtext``: matplotlib draws ``$`` as a dollar sign
=====================  ===========================================================================
"""

from __future__ import annotations

import re
from functools import lru_cache

# Bidirectional formatting: ALM, LRM, RLM, the embeddings and overrides, the isolates.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI}]")
# C0 (line breaks and tabs among them), DEL, C1 (NEL U+0085 and CSI U+009B among them), and the
# Unicode line and paragraph separators: each run becomes one space.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SURROGATES = re.compile(r"[\ud800-\udfff]")  # lone halves: no UTF-8 writer accepts them


def plain(text: object) -> str:
    """``text`` as one line without control or bidirectional formatting characters."""
    text = text if isinstance(text, str) else str(text)
    if text.isprintable():  # the usual case, checked in C: nothing to do
        return text
    text = _SURROGATES.sub("\ufffd", _BIDI.sub("", text))
    return _CONTROLS.sub(" ", text)


def plain_or_none(text: str | None) -> str | None:
    return None if text is None else plain(text)


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(text: object, limit: int = 200) -> str:
    """``text`` for a log line: plain (one line, nothing a terminal runs), at most ``limit`` long."""
    return cut(plain(text), limit)


def name_problem(text: str) -> str | None:
    """Why a name from the configuration cannot be shown as it is, or None."""
    if _CONTROLS.search(text):
        return "holds a control character (a line break, a tab, an escape)"
    if _BIDI.search(text):
        return "holds a bidirectional override or mark (it would show the text in another order)"
    return None


# --- notifications ---------------------------------------------------------------------------

CHAT_LIMIT = 200  # characters of one text in a notification
_WORK_LIMIT = 8 * CHAT_LIMIT  # what is cleaned at most: the rest would be cut anyway
_TAGS = re.compile(r"<[^<>]*>")  # HTML, and Slack's <!channel>, <@U123>, <http://x|text>
# A Markdown link or image with no bracket inside: the innermost, removed first, keeping its text.
_LINKS = re.compile(r"!?\[([^\[\]]*)\][ ]*(?:\([^()]*\)|\[[^\[\]]*\])")
_MARKUP = re.compile(r"[\[\]<>]")  # what is left of links and tags once those are gone
_ENTITY = re.compile(r"&(?=#?\w+;)")  # &#91; would come back as "[" where a receiver decodes it
_MENTION = re.compile(r"(?<![\w.])@(?=\w)")  # @everyone, @here, @someone; not user@example.org
_SCHEME = re.compile(r":(?://|\\\\)")  # after any scheme: http://, a1+x://, http:\\
_WWW = re.compile(r"\bwww\.", re.IGNORECASE)
# Names chat receivers turn into links without a scheme: common and Nordic top-level domains.
# A mail address (user@example.org) stays as it is: readable, and no web link.
TLDS = ("com", "net", "org", "info", "biz", "io", "co", "app", "dev", "xyz", "online", "site", "link", "top",
        "club", "shop", "zip", "mov", "me", "ly", "to", "tk", "gl", "gd", "se", "nu", "eu", "no", "dk", "fi",
        "is", "de", "uk", "ru", "cn", "example")
_DOMAIN = re.compile(r"(?<=[\w-])\.(?=(?:" + "|".join(TLDS) + r")(?![\w-]))", re.IGNORECASE)
_WORD = re.compile(r"[\w@.+-]+\.[\w.+-]+")  # dotted words, mail addresses among them


def chat(text: str | None, limit: int = CHAT_LIMIT) -> str | None:
    """``text`` for Slack, Teams, Discord, Telegram, mail or a webhook: plain, no link, no ping."""
    return None if text is None else _chat(text, limit)


@lru_cache(maxsize=4096)  # the alert engine cleans a printer's state text and file on every poll
def _chat(text: str, limit: int) -> str:
    text = plain(text[:_WORK_LIMIT])
    previous = None
    while text != previous:  # inside out until nothing changes: nested and interleaved markup
        previous = text
        text = _LINKS.sub(r"\1", _TAGS.sub("", text))
    text = _MARKUP.sub("", text)  # no bracket left: no Markdown link, autolink or tag can remain
    previous = None
    while text != previous:  # "&&#91;" and "@@here" would make what they lose again
        previous = text
        text = _MENTION.sub("", _ENTITY.sub("", text))
    text = _SCHEME.sub("(:)//", text)  # http(:)//host: readable, never a link
    text = _WORD.sub(_defang_domains, _WWW.sub("www(.)", text))
    return cut(" ".join(text.split()), limit)


def _defang_domains(word: re.Match) -> str:
    text = word.group()
    return text if "@" in text else _DOMAIN.sub("(.)", text)


# --- PDF ----------------------------------------------------------------------------------------

def no_mathtext():
    """A context in which matplotlib draws every ``$`` as a dollar sign, never as mathtext: a
    name with ``$$`` in it would otherwise stop the whole PDF with a parse error."""
    import matplotlib  # here: the agent never draws, and must not need matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "text.usetex": False})
