"""A job's material in the collector's lines (docs/materials.md "Storage"): summed amounts, the
types, the source and every tool's detail, in the organisation's and the network's line alike;
unknown material is absent, never 0."""

import json

import msgspec

from common import protocol as p
from server import lineproto
from server.inventory import Tags

TAGS = lineproto.tag_set(Tags(printer="p1", site="lab", organisation="Org", county="Örebro", listed=True))


def fields_of(line: str) -> dict:
    """The field set of a line whose strings hold no space, comma or quote but in JSON (tests only)."""
    _, rest = line.split(" ", 1)
    text = rest.rsplit(" ", 1)[0]
    out, i = {}, 0
    while i < len(text):
        eq = text.index("=", i)
        name = text[i:eq]
        if text[eq + 1] == '"':
            end = eq + 2
            while text[end] != '"' or text[end - 1] == "\\":
                end += 1
            out[name] = text[eq + 2:end].replace('\\"', '"').replace("\\\\", "\\")
            i = end + 2
        else:
            end = text.find(",", eq)
            end = len(text) if end < 0 else end
            raw = text[eq + 1:end]
            out[name] = int(raw[:-1]) if raw.endswith("i") else float(raw)
            i = end + 1
    return out


def two_tools(**kw) -> p.Event:
    return p.Event(v=1, ts=1_790_000_000_000, printer="p1", site="lab", seq=9, kind="failed", file="secret-part.gcode",
                   user="u-1", duration=3600.0, progress=40.0, job_started=1_789_996_400_000,
                   material=[p.MaterialUse(source="slicer", tool=0, type="PLA", colour="#FF0000", grams=30.5, mm=10_000.0),
                             p.MaterialUse(source="slicer", tool=1, type="PETG", grams=9.5)], **kw)


def test_a_jobs_material_is_stored_summed_and_per_tool_in_both_databases():
    msg = two_tools()
    for line in (lineproto.event(msg, TAGS), lineproto.event_network(msg, TAGS)):
        f = fields_of(line)
        assert f["material"] == "PLA+PETG" and f["material_source"] == "slicer"
        assert f["grams"] == 40.0 and f["mm"] == 10_000.0 and f["progress"] == 40.0
        tools = json.loads(f["material_use"])
        assert [(t.get("tool", 0), t.get("type"), t.get("grams"), t.get("mm")) for t in tools] == \
            [(0, "PLA", 30.5, 10_000.0), (1, "PETG", 9.5, None)]
        assert msgspec.convert(tools, list[p.MaterialUse]) == msg.material
    network = lineproto.event_network(msg, TAGS)
    assert "secret-part" not in network and "u-1" not in network


def test_unknown_material_is_absent_not_zero():
    bare = p.Event(v=1, ts=1, printer="p1", site="lab", seq=1, kind="done", duration=10.0)
    for line in (lineproto.event(bare, TAGS), lineproto.event_network(bare, TAGS)):
        assert not {"material", "grams", "mm", "material_use", "material_source", "progress"} & set(fields_of(line))
    only_mm = p.Event(v=1, ts=1, printer="p1", site="lab", seq=1, kind="done",
                      material=[p.MaterialUse(source="measured", mm=1234.5)])
    f = fields_of(lineproto.event(only_mm, TAGS))
    assert f["mm"] == 1234.5 and f["material_source"] == "measured"
    assert "grams" not in f and "material" not in f


def test_mixed_sources_are_said_so():
    msg = p.Event(v=1, ts=1, printer="p1", site="lab", seq=1, kind="done",
                  material=[p.MaterialUse(source="measured", grams=1.0), p.MaterialUse(source="slicer", tool=1, grams=2.0)])
    assert fields_of(lineproto.event(msg, TAGS))["material_source"] == "mixed"
