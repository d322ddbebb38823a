"""The collector's MQTT codec, byte for byte against the MQTT 3.1.1 specification.

Every expected byte string below is written out by hand from the specification's figures and
tables (section numbers in the test names' docstrings), never produced by our own encoder.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.mqtt import codec
from server.mqtt.codec import ConnAck, Decoder, PingResp, ProtocolError, Publish, SubAck
from tests.unit.mqtt_packets import publish_packet


# -- 2.2.3 remaining length: Table 2.4 ----------------------------------------------------------

@pytest.mark.parametrize("value, encoded", [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_remaining_length_matches_table_2_4(value, encoded):
    assert codec.remaining_length(value) == encoded


def test_remaining_length_beyond_four_bytes_is_refused():
    with pytest.raises(ValueError):
        codec.remaining_length(268_435_456)


def test_a_fifth_remaining_length_byte_is_malformed():
    with pytest.raises(ProtocolError):
        Decoder(max_packet=1 << 30).feed(b"\x30\xff\xff\xff\xff\x01")


# -- packets the client sends -------------------------------------------------------------------

def test_connect_persistent_session_with_user_name_and_password():
    """3.1: fixed header 0x10; variable header 3.1.2 (protocol name, level 4, flags, keep alive);
    payload 3.1.3 (client identifier, user name, password, each with a two-byte length)."""
    expected = (
        b"\x10" + bytes([10 + 13 + 4 + 4])  # remaining length: 10 + client id + user + password
        + b"\x00\x04MQTT"  # 3.1.2.1 protocol name
        + b"\x04"  # 3.1.2.2 protocol level 4
        + b"\xc0"  # 3.1.2.3 flags: user name 1, password 1, will 0, clean session 0, reserved 0
        + b"\x00\x1e"  # 3.1.2.10 keep alive 30 s
        + b"\x00\x0bcollector-a"
        + b"\x00\x02ab"
        + b"\x00\x02pw"
    )
    assert codec.connect("collector-a", 30, username="ab", password=b"pw") == expected


def test_connect_without_credentials_and_with_clean_session():
    expected = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x0a\x00\x01c"
    assert codec.connect("c", 10, clean_session=True) == expected


def test_connect_refuses_a_password_without_a_user_name():
    with pytest.raises(ValueError, match="3.1.2.9"):
        codec.connect("c", 10, password=b"pw")


def test_subscribe_matches_the_figures_of_3_8():
    """3.8.1 fixed header 0x82; Figure 3.21 packet identifier 10; Figure 3.23 payload
    "a/b" with requested QoS 1 (our collector never asks for QoS 2, so "c/d" asks QoS 0)."""
    expected = b"\x82\x0e" + b"\x00\x0a" + b"\x00\x03a/b\x01" + b"\x00\x03c/d\x00"
    assert codec.subscribe(10, [("a/b", 1), ("c/d", 0)]) == expected


def test_subscribing_at_qos_2_is_refused_before_anything_is_sent():
    with pytest.raises(ValueError, match="QoS 2"):
        codec.subscribe(1, [("a/b", 2)])


def test_shared_subscription_filter_is_an_ordinary_utf8_string():
    filt = "$share/farm/printfarm/v1/+/+/+"
    assert codec.subscribe(1, [(filt, 1)]) == b"\x82" + bytes([2 + 2 + len(filt) + 1]) + b"\x00\x01" + \
        b"\x00\x1e" + filt.encode() + b"\x01"


def test_utf8_string_example_of_1_5_3():
    """Figure 1.1: 'A' followed by U+2A6D4 is 00 05 41 F0 AA 9B 94."""
    assert codec.subscribe(1, [("A\U0002a6d4", 0)])[4:] == b"\x00\x05\x41\xf0\xaa\x9b\x94\x00"


def test_pubacks_are_four_bytes_each_in_one_string():
    """3.4: 0x40, remaining length 2, the packet identifier."""
    assert codec.pubacks([10, 1, 65535]) == b"\x40\x02\x00\x0a" + b"\x40\x02\x00\x01" + b"\x40\x02\xff\xff"
    assert codec.pubacks([]) == b""


@pytest.mark.parametrize("bad", [0, 65536])
def test_pubacks_refuse_identifiers_outside_the_range(bad):
    with pytest.raises(ValueError):
        codec.pubacks([1, bad])


def test_pingreq_and_disconnect():
    assert codec.PINGREQ == b"\xc0\x00"  # 3.12
    assert codec.DISCONNECT == b"\xe0\x00"  # 3.14


# -- packets from the broker --------------------------------------------------------------------

def test_connack_session_present_and_accepted():
    """3.2: 0x20, remaining length 2, acknowledge flags (bit 0 = session present), return code."""
    assert Decoder().feed(b"\x20\x02\x01\x00") == [ConnAck(session_present=True, return_code=0)]


def test_connack_refusal_is_named():
    (ack,) = Decoder().feed(b"\x20\x02\x00\x05")
    assert ack.refusal == "not authorised"


def test_publish_qos1_matches_figure_3_11():
    """3.3.2.3 Figure 3.11: topic "a/b", packet identifier 10; payload follows; 3.3.1 flags."""
    packet = b"\x32\x0a" + b"\x00\x03a/b" + b"\x00\x0a" + b"hi!"
    assert Decoder().feed(packet) == [Publish("a/b", b"hi!", 1, 10)]


def test_publish_qos0_has_no_packet_identifier_and_keeps_retain_and_dup():
    assert Decoder().feed(b"\x31\x06\x00\x03a/bX") == [Publish("a/b", b"X", 0, 0, retain=True)]
    assert Decoder().feed(b"\x3a\x06\x00\x01t\x00\x07Y")[0].dup


def test_suback_matches_figure_3_26():
    """3.9: packet identifier 10; return codes 0 (QoS 0), 2 (QoS 2), 128 (failure)."""
    assert Decoder().feed(b"\x90\x05\x00\x0a\x00\x02\x80") == [SubAck(10, (0, 2, codec.SUBACK_FAILURE))]


def test_pingresp():
    assert Decoder().feed(b"\xd0\x00") == [PingResp()]


@pytest.mark.parametrize("packet, why", [
    (b"\x34\x07\x00\x01t\x00\x01xx", "QoS 2"),  # we never asked for QoS 2
    (b"\x36\x07\x00\x01t\x00\x01xx", "QoS 3"),
    (b"\x32\x05\x00\x01t\x00\x00", "identifier 0"),
    (b"\x32\x01\x00", "too short"),
    (b"\x32\x04\x00\x05ab", "shorter than"),
    (b"\x30\x04\x00\x02\xff\xfe", "UTF-8"),
    (b"\x21\x02\x00\x00", "type 2"),  # CONNACK flags must be 0 (2.2.2)
    (b"\x20\x02\x02\x00", "type 2"),  # CONNACK reserved acknowledge flag bits
    (b"\x90\x03\x00\x01\x03", "type 9"),  # SUBACK return code 3 does not exist
    (b"\xd0\x01\x00", "type 13"),
    (b"\x40\x02\x00\x01", "type 4"),  # a PUBACK: we never publish
    (b"\x00\x00", "type 0"),  # reserved
])
def test_malformed_or_unexpected_packets_are_protocol_errors(packet, why):
    with pytest.raises(ProtocolError, match=why):
        Decoder().feed(packet)


def test_a_control_packet_over_the_limit_is_refused_before_it_is_buffered():
    with pytest.raises(ProtocolError, match="limit"):
        Decoder(max_packet=100).feed(b"\x90\xe5\x00")  # a SUBACK announcing 101 bytes


@settings(max_examples=100, deadline=None)
@given(size=st.integers(101, 5000), cuts=st.lists(st.integers(1, 400), max_size=40))
def test_a_publish_over_the_limit_comes_out_cut_and_the_stream_goes_on(size, cuts):
    big = publish_packet("a/b", bytes(range(256)) * (size // 256 + 1), 1, 7)
    stream = big + publish_packet("a/b", b"next", 1, 8)
    decoder, got, pos, most = Decoder(max_packet=100), [], 0, 0
    for cut in cuts + [len(stream)]:
        got += decoder.feed(stream[pos:pos + cut])
        pos += cut
        most = max(most, decoder.pending())
    first, second = got
    # Body = topic (2 + 3) + packet id (2) + payload: the first 100 bytes of it are kept.
    assert (first.topic, first.packet_id, first.truncated) == ("a/b", 7, True)
    assert first.payload == (bytes(range(256)) * 20)[:93]
    assert second == Publish("a/b", b"next", 1, 8)
    assert most <= 100 + 5  # never more than the limit and a fixed header is buffered


# -- however the stream is cut --------------------------------------------------------------------

def stream_of(payloads):
    return st.lists(st.one_of(
        st.tuples(st.text(min_size=1, max_size=30), payloads, st.sampled_from([0, 1]), st.integers(1, 65535)),
        st.just("ping"),
        st.just("connack"),
    ), min_size=1, max_size=25)


stream_items = stream_of(st.binary(max_size=300) | st.integers(16_380, 16_400).map(lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)))


def _encode(item) -> tuple[bytes, object]:
    if item == "ping":
        return b"\xd0\x00", PingResp()
    if item == "connack":
        return b"\x20\x02\x00\x00", ConnAck(False, 0)
    topic, payload, qos, pid = item
    return publish_packet(topic, payload, qos, pid), Publish(topic, payload, qos, pid if qos else 0)


@settings(max_examples=200, deadline=None)
@given(items=stream_items, cuts=st.lists(st.integers(0, 20_000), max_size=30))
def test_split_buffers_give_the_same_packets_in_order(items, cuts):
    encoded = [_encode(item) for item in items]
    stream = b"".join(raw for raw, _ in encoded)
    decoder, got, pos = Decoder(), [], 0
    for cut in sorted(cuts) + [len(stream)]:
        got += decoder.feed(stream[pos:cut])
        pos = max(pos, cut)
    assert got == [packet for _, packet in encoded]
    assert decoder.pending() == 0


@settings(max_examples=100, deadline=None)
@given(items=stream_of(st.binary(max_size=300)))
def test_byte_by_byte_equals_all_at_once(items):
    stream = b"".join(_encode(item)[0] for item in items)
    one = Decoder()
    by_byte = [packet for i in range(len(stream)) for packet in one.feed(stream[i:i + 1])]
    assert by_byte == Decoder().feed(stream)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_give_packets_or_a_protocol_error_never_anything_else(data):
    try:
        packets = Decoder().feed(data)
    except ProtocolError:
        return
    assert all(isinstance(p, (Publish, ConnAck, SubAck, PingResp)) for p in packets)


@given(st.integers(1, codec.MAX_REMAINING_LENGTH))
def test_remaining_length_round_trips_through_the_decoder(n):
    head = b"\x30" + codec.remaining_length(n)
    decoder = Decoder(max_packet=codec.MAX_REMAINING_LENGTH)
    assert decoder.feed(head) == [] and decoder.pending() == len(head)


# -- the fast path for plain QoS 1 PUBLISH packets equals the general path -----------------------

def _feeds(decoder: Decoder, stream: bytes, cuts: list[int]) -> list:
    """What each feed gives (packets, or the ProtocolError's text, after which the caller closes)."""
    out, pos = [], 0
    for cut in sorted(cuts) + [len(stream)]:
        try:
            out.append(decoder.feed(stream[pos:max(pos, cut)]))
        except ProtocolError as exc:
            out.append(f"ProtocolError: {exc}")
            break
        pos = max(pos, cut)
    return out + [decoder.pending()]


def raw_publishes(pids):
    return st.builds(
        lambda topic, payload, flags, pid: bytes([0x30 | flags]) + codec.remaining_length(4 + len(topic) + len(payload))
        + len(topic).to_bytes(2, "big") + topic + pid.to_bytes(2, "big") + payload,
        st.text(max_size=12).map(str.encode) | st.binary(max_size=12),
        st.binary(max_size=400) | st.integers(120, 400).map(lambda n: bytes(range(256))[:n % 256] * 2)
        | st.integers(16_370, 16_400).map(lambda n: b"x" * n),  # one, two or three length bytes
        st.sampled_from([0x2, 0x2, 0x2, 0x0, 0x3, 0xA, 0xB]),  # mostly plain QoS 1; QoS 0, RETAIN, DUP
        pids)


noise = st.sampled_from([b"\xd0\x00", b"\x20\x02\x00\x00", b"\x32", b"\x32\xff", b"\x32\x80\x80\x01", b"\x34\x05\x00\x01t\x00\x01",
                         b"\x32\x03\x00\x01t", b"\x32\x04\x00\x05ab", b"\x40\x02\x00\x01"]) | st.binary(max_size=6)
limits = st.sampled_from([codec.MAX_PACKET, 16_390, 300, 40, 4])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(raw_publishes(st.integers(1, 65535)), min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 60_000), max_size=12), max_packet=limits)
def test_the_fast_path_gives_what_the_general_path_gives_for_sound_streams(parts, cuts, max_packet):
    stream = b"".join(parts)
    assert _feeds(Decoder(max_packet), stream, cuts) == _feeds(Decoder(max_packet, fast=False), stream, cuts)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(raw_publishes(st.sampled_from([0, 1, 65535])) | noise, min_size=1, max_size=30),
       cuts=st.lists(st.integers(0, 6000), max_size=12),
       flip=st.none() | st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_packet=limits)
def test_the_fast_path_gives_what_the_general_path_gives_for_broken_streams(parts, cuts, flip, max_packet):
    stream = bytearray(b"".join(parts))
    if flip and stream:
        stream[flip[0] % len(stream)] = flip[1]
    assert _feeds(Decoder(max_packet), bytes(stream), cuts) == _feeds(Decoder(max_packet, fast=False), bytes(stream), cuts)


@settings(max_examples=100, deadline=None)
@given(items=stream_items, cuts=st.lists(st.integers(0, 20_000), max_size=30))
def test_the_general_path_alone_still_decodes_every_stream(items, cuts):
    """The reference the fast path is held to decodes the spec-built streams above correctly too."""
    encoded = [_encode(item) for item in items]
    stream = b"".join(raw for raw, _ in encoded)
    got = [p for feed in _feeds(Decoder(fast=False), stream, cuts)[:-1] for p in feed]
    assert got == [packet for _, packet in encoded]


def test_a_drain_of_plain_qos1_publishes_takes_the_fast_path():
    """Positive control for the property above: the fast path is what decodes such a stream."""
    stream = b"".join(publish_packet(f"printfarm/v1/s/p{i}/telemetry", b"x" * 300, 1, i + 1) for i in range(50))
    decoder = Decoder()
    taken = []
    decoder._publishes = lambda buf, pos, packets: taken.append(pos) or Decoder._publishes(decoder, buf, pos, packets)
    assert len(decoder.feed(stream)) == 50 and taken == [0]
