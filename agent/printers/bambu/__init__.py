"""Bambu Lab printers (X1, P1, A1 families) in LAN mode: MQTT over TLS to the printer itself.

- ``settings``: the ``[[printers]]`` table (``type = "bambu"``);
- ``client``: the connection, its watchdog and the full-state requests;
- ``report``: reports merged into one state, and that state in printfarm's terms;
- ``errors``: readable text for the printer's error and HMS codes;
- ``tls``: whom to trust (a CA and the serial as name, or a pinned certificate).
"""

from agent.printers.bambu.settings import BambuSettings

__all__ = ["BambuSettings"]
