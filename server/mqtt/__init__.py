"""The collector's MQTT subscription, on a codec of our own (no third-party MQTT client).

- ``codec``: MQTT 3.1.1 packets as bytes, no I/O (sans-IO).
- ``session``: the socket loop: connect, subscribe, read, acknowledge, keep alive, reconnect.
- ``acks``: the acknowledgement handshake with the InfluxDB writer (track / acknowledge).
- ``transport``: TCP and TLS.
"""

from server.mqtt.acks import Acknowledgements
from server.mqtt.session import Subscriber, subscriptions

__all__ = ["Acknowledgements", "Subscriber", "subscriptions"]
