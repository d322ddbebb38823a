"""PUBLISH packets as a broker sends them, written from the MQTT 3.1.1 specification (3.3) and
independently of server/mqtt/codec.py, which has no PUBLISH encoder at all."""


def publish_packet(topic: str, payload: bytes, qos: int, packet_id: int) -> bytes:
    t = topic.encode()
    body = len(t).to_bytes(2, "big") + t + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    n, length = len(body), bytearray()
    while True:  # 2.2.3: seven bits per byte, least significant first
        n, digit = divmod(n, 128)
        length.append(digit | (0x80 if n else 0))
        if not n:
            return bytes([0x30 | qos << 1]) + bytes(length) + body
