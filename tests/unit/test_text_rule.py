"""One rule for text shown to a person (common/text.py), checked for any text by hypothesis: no
control character, no bidirectional override, and no link for any target (chat, terminal)."""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from common.configkit import ConfigError
from common.text import BIDI, CHAT_LIMIT, chat, one_line, plain
from server import inventory
from devkit.demo.table import render

# Any text, surrogates and unassigned code points included, with what attackers use made likely.
NASTY = ["\x1b", "\x9b", "\x07", "\x1b]8;;http://evil.example\x1b\\", "\x1b]0;pwned\x07", "\x1b[2J", "\u202e",
         "\u2066", "\u200f", "\n", "\r", "\x85", "\u2028", "[", "]", "(", ")", "<", ">", "!", "@", "&#91;",
         "http://", "https://evil.example/x", "www.", "evil.com", ".", "/", ":", "$", "[link=http://evil.example]",
         "[/link]", "\ud800"]
TEXT = st.lists(st.one_of(st.text(st.characters(codec=None)), st.sampled_from(NASTY)), max_size=30).map("".join)


@st.composite
def markup(draw, depth: int = 3) -> str:
    """Markdown links, images, HTML and Slack tags, nested and interleaved in any order."""
    leaf = st.sampled_from(["a", "invoice", "http://evil.example", "evil.example/x", "www.evil.se", "<x>", "",
                            "@here", " ", "&#93;", "ftp://x", "a.b.com"])
    if depth == 0:
        return draw(leaf)
    inner = st.one_of(leaf, markup(depth - 1))
    shape = draw(st.sampled_from(["[{0}]({1})", "![{0}]({1})", "[{0}]<{2}>({1})", "<{0}>", "<{1}|{0}>", "[{0}][{1}]",
                                  "[{0}]\n({1})", "{0}{1}", "[{0}]({1}{2})", "[{0}] ({1})", "({0})[{1}]"]))
    return shape.format(draw(inner), draw(st.sampled_from(["http://evil.example", "https://x.io/(y)", "www.z.com",
                                                           "javascript:alert(1)", ""]) | inner), draw(inner))


def no_hidden_characters(text: str) -> None:
    assert not [c for c in text if unicodedata.category(c) in ("Cc", "Cs") or c in BIDI or c in "\u2028\u2029"], text


# What a chat receiver (Slack, Teams, Discord, mail) turns into a link or a ping.
LINKS = [re.compile(p, re.IGNORECASE) for p in (
    r"\]\s*[(\[:]",  # Markdown inline, reference and definition
    r"<[a-z!@#/]",  # HTML, autolinks, Slack's <!channel> <@U1> <#C1>
    r":(//|\\\\)",  # a URL with a scheme
    r"\bwww\.",
    r"(?<![@\w.+-])[a-z0-9-]+(\.[a-z0-9-]+)*\.(com|io|se|example)\b(?![@.\w-])",  # a bare web domain
    r"&#?\w+;",  # an entity a receiver decodes into one of the above
    r"(?<![\w.])@\w",  # @everyone, @here
)]


@settings(max_examples=300, deadline=None)
@given(TEXT)
@example("\x9b2J\u202eredro")
def test_plain_leaves_no_control_bidi_or_surrogate_and_printable_text_as_it_is(text):
    out = plain(text)
    no_hidden_characters(out)
    assert plain(out) == out
    if text.isprintable():
        assert out == text
    assert len(one_line(text, 50)) <= 50


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, markup(), st.lists(st.one_of(markup(), TEXT), max_size=4).map("".join)))
@example("[a]<x>(http://evil.example)")
@example("[[a](http://evil.example)](http://evil.example)")
@example("&#91;a&#93;(http://evil.example)")
def test_chat_text_has_no_hidden_character_no_link_and_no_ping(text):
    out = chat(text)
    no_hidden_characters(out)
    assert len(out) <= CHAT_LIMIT
    found = [p.pattern for p in LINKS if p.search(out)]
    assert not found, (out, found)


def test_each_reported_bypass_loses_its_link_and_keeps_readable_text():
    assert chat("[a]<x>(http://evil.example)") == "a"
    assert chat("[[click](http://x.example)](http://evil.example)") == "click"
    assert chat("go to https://evil.example/login now") == "go to https(:)//evil(.)example/login now"
    assert chat("\x9b2Jcube\u202eedoc.gcode") == "2Jcubeedoc.gcode"
    assert chat("mail ops@example.org") == "mail ops@example.org"  # an address stays readable


def _terminal(fleet: dict) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=140).print(render(fleet, "h", "f", 0))
    return out.getvalue()


def _fleet(text: str) -> dict:
    return {"printers": [{"printer": text or "p", "site": text or "s", "county": text, "state": "error",
                          "error": text, "organisation": text}, 
                         {"printer": "p2", "site": text or "s", "county": text, "state": "printing", "file": text,
                          "progress": 5.0}]}


SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colours and styles: the only sequence allowed


@settings(max_examples=150, deadline=None)
@given(TEXT)
@example("[link=http://evil.example]click[/link]")
@example("\x1b]0;pwned\x07\x1b[2J\x9b2J\x1b]8;;http://evil.example\x1b\\x\x1b]8;;\x1b\\")
def test_the_demo_table_sends_the_terminal_no_escape_sequence_from_fleet_text(text):
    shown = SGR.sub("", _terminal(_fleet(text)))
    no_hidden_characters(shown.replace("\n", ""))


def test_rich_markup_in_a_file_name_is_shown_as_text_not_a_link():
    shown = _terminal(_fleet("[link=http://evil.example]click[/link]"))
    assert "\x1b]8;" not in shown and "[link=http://evil" in SGR.sub("", shown)


@pytest.mark.parametrize("table, key", [
    ({"sites": {"lab": {"organisation": "North\u202eAB", "county": "Uppsala"}}}, "sites.lab.organisation"),
    ({"sites": {"lab": {"organisation": "North", "county": "Uppsala", "name": "Lab\x9b2J"}}}, "sites.lab.name"),
    ({"sites": {"lab": {"organisation": "North", "county": "Uppsala"}},
      "printers": {"p1": {"site": "lab", "model": "MK4\x1b]0;x\x07"}}}, "printers.p1.model"),
    ({"customers": {"acme": {"kind": "academia", "county": "Uppsala", "name": "Acme\u2066"}}}, "customers.acme.name"),
])
def test_an_inventory_name_with_a_control_or_bidi_character_is_refused_naming_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        inventory.from_dict(table, "fleet.toml")
    assert err.value.key == key and "without it" in err.value.fix, err.value.line()


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), st.sampled_from(["$", "$$", "\\frac{", "^", "_", "\\", "{", "}"])),
                max_size=12).map("".join))
@example("Cash $$ Lab $\\frac{1}{")
def test_any_name_is_drawn_in_a_pdf_as_written_never_as_mathtext(text):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from common.text import no_mathtext

    with no_mathtext():
        fig = plt.figure(figsize=(2, 1))
        drawn = fig.text(0.1, 0.5, plain(text))
        fig.canvas.draw()  # mathtext would raise here for "$\\frac{$"
        assert drawn.get_text() == plain(text)
    plt.close(fig)
