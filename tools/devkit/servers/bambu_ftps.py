"""An implicit-FTPS server standing in for a Bambu Lab printer's storage (port 990 on a printer).

What a printer's FTPS does and this one does too: TLS from the first byte (no ``AUTH TLS``) with
the printer's own certificate (issued by the test CA to the serial, as the MQTT side), one user
``bblp`` whose password is the LAN access code (``530`` otherwise), ``PBSZ 0`` / ``PROT P``
protecting the data channel with TLS too, passive mode, ``SIZE`` and ``RETR`` of files in
``/`` and ``/cache/``. Nothing else (no upload, no listing): the agent only reads a job's 3MF.
Files come from ``files`` (set by a test) or from a directory (``root``: where the simulator,
in another process, writes its jobs' 3MFs).
Written on the standard library's ``ssl`` and ``socketserver``, one thread per client; loopback only.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from pathlib import Path

USER = "bblp"


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def setup(self):
        self.request.settimeout(10)
        super().setup()
        self.user: str | None = None
        self.logged_in = self.protected = False
        self.passive: socket.socket | None = None

    def handle(self):
        self.reply("220 BambuLab FTP server ready")
        while True:
            try:
                line = self.rfile.readline(4096).decode("utf-8", "replace").rstrip("\r\n")
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            verb, _, arg = line.partition(" ")
            if not self.command(verb.upper(), arg):
                return

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def command(self, verb: str, arg: str) -> bool:
        server = self.server
        server.commands.append(verb if verb != "PASS" else "PASS ****")
        if verb == "QUIT":
            self.reply("221 Goodbye")
            return False
        if verb == "USER":
            self.user = arg
            self.reply("331 Password required")
        elif verb == "PASS":
            self.logged_in = self.user == USER and arg == server.access_code
            self.reply("230 Login successful" if self.logged_in else "530 Login incorrect")
        elif not self.logged_in:
            self.reply("530 Please login with USER and PASS")
        elif verb == "PBSZ":
            self.reply("200 PBSZ=0")
        elif verb == "PROT":
            self.protected = arg.upper() == "P"
            self.reply("200 PROT now " + ("Private" if self.protected else "Clear"))
        elif verb in ("TYPE", "NOOP"):
            self.reply("200 OK")
        elif verb == "PWD":
            self.reply('257 "/"')
        elif verb == "SIZE":
            data = server.lookup(arg)
            self.reply(f"213 {len(data)}" if data is not None else "550 Could not get file size")
        elif verb == "PASV":
            self.open_passive()
        elif verb == "RETR":
            self.retrieve(arg)
        else:
            self.reply("502 Command not implemented")
        return True

    def open_passive(self) -> None:
        if self.passive is not None:
            self.passive.close()
        self.passive = socket.create_server(("127.0.0.1", 0))
        self.passive.settimeout(10)
        port = self.passive.getsockname()[1]
        self.reply(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 0xFF})")

    def retrieve(self, path: str) -> None:
        data = self.server.lookup(path)
        if data is None or self.passive is None:
            self.reply("550 Failed to open file" if data is None else "425 Use PASV first")
            return
        self.reply(f"150 Opening BINARY mode data connection ({len(data)} bytes)")
        try:
            conn, _ = self.passive.accept()
            if self.protected:
                conn = self.server.context.wrap_socket(conn, server_side=True)
            with conn:
                conn.sendall(data)
                if isinstance(conn, ssl.SSLSocket):
                    conn.unwrap()  # close_notify both ways, as ftplib's client expects
        except (OSError, ssl.SSLError):
            self.reply("426 Connection closed; transfer aborted")
            return
        finally:
            self.passive.close()
            self.passive = None
        self.server.retrieved.append(path)
        self.reply("226 Transfer complete")

    def finish(self):
        if self.passive is not None:
            self.passive.close()
        super().finish()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, access_code: str, root: Path | None):
        self.context, self.access_code, self.root = context, access_code, root
        self.files: dict[str, bytes] = {}
        self.commands: list[str] = []
        self.retrieved: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def lookup(self, path: str) -> bytes | None:
        if path in self.files:
            return self.files[path]
        if self.root is None:
            return None
        target = (self.root / path.lstrip("/")).resolve()
        inside = target.is_relative_to(self.root.resolve())
        return target.read_bytes() if inside and target.is_file() else None

    def get_request(self):
        sock, address = super().get_request()
        sock.settimeout(10)
        try:
            return self.context.wrap_socket(sock, server_side=True), address  # implicit: TLS at once
        except (OSError, ssl.SSLError):
            sock.close()
            raise


class BambuFTPS:
    """One printer's FTPS. ``files``: path -> bytes (``/name.gcode.3mf``, ``/cache/name.3mf``)."""

    def __init__(self, certfile: Path, keyfile: Path, access_code: str, root: Path | None = None):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.root = root
        self._server = _Server(context, access_code, root)
        self.host, self.port = self._server.server_address
        self._thread = threading.Thread(target=self._server.serve_forever, name="bambu ftps", daemon=True)

    @property
    def files(self) -> dict[str, bytes]:
        return self._server.files

    @property
    def commands(self) -> list[str]:
        """The commands received, the password masked: for tests."""
        return self._server.commands

    @property
    def retrieved(self) -> list[str]:
        return self._server.retrieved

    def __enter__(self) -> "BambuFTPS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
