"""The collector's MQTT subscription."""

from server.mqtt.paho_reader import Subscriber, subscriptions

__all__ = ["Subscriber", "subscriptions"]
