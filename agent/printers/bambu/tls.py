"""TLS to a Bambu printer: whom to trust, checked before the access code leaves the Pi.

A printer's MQTT certificate is issued by Bambu Lab's own CA with the printer's serial as its
name, while we reach the printer by IP address. So the serial is sent as the TLS server name
(SNI, as Bambu Studio does) and checked against the certificate (OpenBambuAPI, tls.md). Two ways
to trust a printer, either or both:

- ``ca``: a CA file (Bambu Lab's CA, or your own lab CA): the chain must lead to it and the
  name must be the serial. OpenSSL checks both during the handshake.
- ``pin``: the SHA-256 of the printer's own certificate: any other certificate is refused.

With neither, nothing is checked: the config has to say so (``insecure_skip_verify``).
The checks run inside the handshake (``do_handshake`` below), before paho writes CONNECT with
the access code: an impostor never sees it.
"""

from __future__ import annotations

import hashlib
import ssl

from agent.printers.limits import size_text


class CertificateRefused(ssl.SSLError):
    """The printer's certificate is not the one pinned by ``fingerprint``."""


class PacketTooLarge(ConnectionError):
    """The printer announced an MQTT packet over ``limits.packet_bytes``."""


class PacketSizeGuard:
    """Follows the MQTT packets in the bytes received and stops at the first packet header
    announcing more than ``cap`` bytes, before paho reads (and holds) its body. paho has no
    bound of its own on incoming packets: it takes whatever the remaining length says."""

    def __init__(self, cap: int):
        self.cap = cap
        self.skip = 0  # bytes of the current packet's body still to come
        self.length: int | None = None  # the remaining length being decoded (None: at a packet start)
        self.shift = 0

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self.skip:
                step = min(self.skip, end - pos)
                self.skip -= step
                pos += step
            elif self.length is None:  # the fixed header's first byte: packet type and flags
                self.length, self.shift = 0, 0
                pos += 1
            else:  # one byte of the remaining length (7 bits each, at most 4 bytes)
                byte = data[pos]
                pos += 1
                self.length |= (byte & 0x7F) << self.shift
                self.shift += 7
                if byte & 0x80 and self.shift < 28:
                    continue
                if self.length > self.cap:
                    raise PacketTooLarge(f"the printer sent an MQTT packet of {size_text(self.length)}, over "
                                         f"{size_text(self.cap)} (limits.packet_bytes)")
                self.skip, self.length = self.length, None


class _CheckedSocket(ssl.SSLSocket):
    def recv(self, buflen=1024, flags=0):
        data = super().recv(buflen, flags)
        cap = getattr(self.context, "max_packet", None)
        if cap and data:
            guard = getattr(self, "packet_guard", None)
            if guard is None:
                guard = self.packet_guard = PacketSizeGuard(cap)
            try:
                guard.feed(data)
            except PacketTooLarge as exc:
                self.breach = str(exc)  # read by the client's on_disconnect, to say why
                raise
        return data

    def do_handshake(self, *args, **kwargs):
        super().do_handshake(*args, **kwargs)
        pin = getattr(self.context, "pin", None)
        if pin is not None:
            got = hashlib.sha256(self.getpeercert(binary_form=True) or b"").digest()
            if got != pin:
                self.close()
                raise CertificateRefused(
                    f"the printer's certificate has SHA-256 {format_fingerprint(got)}, "
                    f"not the pinned {format_fingerprint(pin)}")


class PrinterContext(ssl.SSLContext):
    """An SSLContext that always names the printer by its serial, whatever host we dial."""

    printer_name = ""
    pin: bytes | None = None
    max_packet: int | None = None  # bytes: a larger MQTT packet from the printer ends the connection

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    suppress_ragged_eofs=True, server_hostname=None, session=None):
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   server_hostname=self.printer_name, session=session)


def make_context(serial: str, ca_file: str | None, pin: bytes | None,
                 max_packet: int | None = None) -> PrinterContext:
    # PROTOCOL_TLS_CLIENT, not create_default_context(): from Python 3.13 the latter adds
    # VERIFY_X509_STRICT, which refuses Bambu's CA (it has no key usage extension).
    ctx = PrinterContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.printer_name, ctx.pin, ctx.max_packet = serial, pin, max_packet
    ctx.sslsocket_class = _CheckedSocket
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
        ctx.check_hostname = True
        ctx.hostname_checks_common_name = True  # printers name themselves in the CN, no SAN
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the pin (or nothing, if the config says so) decides
    return ctx


def parse_fingerprint(text: str) -> bytes | None:
    """'AB:CD:…' or 'abcd…' (64 hex digits) -> 32 bytes; None if it is not one."""
    digits = text.replace(":", "").replace(" ", "").strip()
    if len(digits) != 64:
        return None
    try:
        return bytes.fromhex(digits)
    except ValueError:
        return None


def format_fingerprint(digest: bytes) -> str:
    return ":".join(f"{b:02X}" for b in digest)


def describe(exc: BaseException, serial: str, host: str, port: int, timeout: float) -> str:
    """One line naming what went wrong and what to check."""
    if isinstance(exc, CertificateRefused):
        return f"TLS refused: {exc.args[0]} — check fingerprint (a reset printer has a new certificate)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verification(exc, serial)
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused at {host}:{port} — is the printer on, with LAN mode enabled?"
    if isinstance(exc, TimeoutError):
        return f"no answer from {host}:{port} within {timeout:g} s"
    if isinstance(exc, OSError):
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _verification(exc: ssl.SSLCertVerificationError, serial: str) -> str:
    message = exc.verify_message or str(exc)
    if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
        return (f"TLS refused: the printer's certificate is not issued to serial {serial} ({message})"
                " — check serial")
    if exc.verify_code in (2, 18, 19, 20, 21):  # no issuer found / self-signed: not our CA
        return f"TLS refused: the printer's certificate is not signed by the CA in ca_file ({message}) — check ca_file"
    return f"TLS refused: {message}"
