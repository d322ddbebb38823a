"""The hand-written telemetry line (the collector's hot path) equals the generic builder's."""

from hypothesis import given, settings
from hypothesis import strategies as st

from common import protocol as p
from server import lineproto
from server.inventory import Tags

TAGS = lineproto.tag_set(Tags(printer="mk4-01", site="umu", organisation="Umeå Uni", county="Västerbotten",
                              listed=True))


def generic_telemetry(msg, tags):
    """The foundation's version, built through lineproto._fields: the reference."""
    f = lineproto._float
    pairs = [("state", msg.state), ("state_text", msg.state_text or None), ("seq", msg.seq)]
    for name, temp in msg.temps.items():
        pairs += [(f"{name}_actual", f(temp.actual)), (f"{name}_target", f(temp.target))]
    pairs += [("progress", f(msg.progress)), ("print_time", f(msg.print_time)), ("time_left", f(msg.time_left)),
              ("file", msg.file), ("user", msg.user), ("filament_mm", f(msg.filament_mm))]
    return f"telemetry{tags} {lineproto._fields(pairs)} {msg.ts}"


num = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(-10**6, 10**6)
text = st.text(max_size=30)


@settings(max_examples=300, deadline=None)
@given(state=st.sampled_from(p.STATES), state_text=text, seq=st.integers(0, 2**50),
       temps=st.dictionaries(st.sampled_from(["tool0", "tool1", "bed", "chamber"]), st.tuples(num, num), max_size=4),
       progress=num, print_time=num, time_left=num, file=st.none() | text, user=st.none() | text, filament=num)
def test_fast_telemetry_line_equals_the_generic_one(state, state_text, seq, temps, progress, print_time, time_left,
                                                     file, user, filament):
    msg = p.Telemetry(v=1, ts=1_790_000_000_000, printer="mk4-01", site="umu", seq=seq, state=state,
                      state_text=state_text, temps={k: p.Temperature(*v) for k, v in temps.items()},
                      progress=progress, print_time=print_time, time_left=time_left, file=file, user=user,
                      filament_mm=filament)
    assert lineproto.telemetry(msg, TAGS) == generic_telemetry(msg, TAGS)


def test_strings_with_quotes_backslashes_and_newlines_are_escaped():
    assert lineproto.string('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c d"'
    assert lineproto.string("plain") == '"plain"'
