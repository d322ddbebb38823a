"""printfarm agent: polls printers, publishes to MQTT."""

__version__ = "0.1.0"
