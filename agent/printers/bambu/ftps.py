"""The job's 3MF from the printer over FTPS, for the grams its slicer planned (slice_info).

A Bambu printer in LAN mode serves its storage over implicit FTPS: TLS from the first byte on
port 990, user ``bblp``, password the LAN access code, the data channel protected too (``PROT
P``), as Bambu Studio and ha-bambulab use it. The certificate is checked exactly as on the MQTT
side (tls.py: the CA and the serial as name, or the pinned fingerprint), before the access
code is sent.

Where the file lies (ha-bambulab's notes from real printers): a job sent from the slicer is
``/<subtask_name>.gcode.3mf`` (or ``.3mf``), a cloud job ``/cache/<subtask_name>.3mf``; P1
printers name the 3MF in ``gcode_file`` itself. X1 printers report ``/data/Metadata/plate_N.gcode``
(a RAM disk, not on FTP): the name then only tells the plate.

All of it runs in one background thread per printer with timeouts and a size cap: a wrong access
code, a certificate we do not trust, a missing file or a slow printer is one log line (no
secret, no file name) and the job's material comes without grams; the report stream, which is
the printer's monitoring, never waits for it.
"""

from __future__ import annotations

import ftplib
import logging
import socket
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Callable

from agent.printers.bambu import slice_info, tls
from agent.printers.limits import size_text
from agent.printers.problems import ProblemLog

log = logging.getLogger(__name__)

USER = "bblp"
MAX_BYTES = 256 << 20  # a 3MF bigger than this is not fetched (a real one: kilobytes to tens of MB)
DEADLINE = 120.0  # seconds for one whole fetch, however slowly the printer trickles
RETRY_AFTER = 20.0  # seconds: the printer may still be writing the file when the job begins
ATTEMPTS = 3
KEEP = 8  # jobs whose material is remembered


class NotFound(Exception):
    """No candidate path holds the job's 3MF."""


class TooLarge(Exception):
    """The 3MF is over MAX_BYTES (announced by SIZE, or while it arrives)."""


class ImplicitFTPS(ftplib.FTP_TLS):
    """ftplib's FTPS with TLS from the first byte (implicit FTPS), the data channel reusing the
    control channel's TLS session (printers that demand it refuse a fresh one)."""

    secure_data = False

    def connect(self, host="", port=0, timeout=-999, source_address=None):
        self.host, self.port = host or self.host, port or self.port
        if timeout != -999:
            self.timeout = timeout
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self.context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.af = self.sock.family
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def prot_p(self):
        reply = super().prot_p()
        self.secure_data = True
        return reply

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self.secure_data:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size


def candidates(subtask: str, gcode_file: str) -> list[str]:
    """The paths the job's 3MF may have on the printer, likeliest first."""
    names = []
    if subtask:
        names += [subtask] if subtask.lower().endswith(".3mf") else [f"{subtask}.gcode.3mf", f"{subtask}.3mf"]
    if gcode_file.lower().endswith(".3mf"):
        names.append(gcode_file.lstrip("/").removeprefix("sdcard/"))
    paths = [f"{folder}{name.lstrip('/')}" for name in names for folder in ("/", "/cache/")]
    return list(dict.fromkeys(p for p in paths if "\n" not in p and "\r" not in p))


class Fetcher:
    """Fetches and reads each job's 3MF once, in the background; ``material(key)`` answers at once."""

    max_bytes = MAX_BYTES

    def __init__(self, cfg, changed: Callable[[], None], connect: Callable[[], ImplicitFTPS] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, retry_after: float = RETRY_AFTER):
        self.cfg, self._changed, self._monotonic, self.retry_after = cfg, changed, monotonic, retry_after
        self._connect = connect or self._open
        self._context = tls.make_context(cfg.serial, cfg.ca_file, cfg.pin)  # no MQTT packet guard here
        self._results: OrderedDict[tuple, tuple] = OrderedDict()  # key -> material (empty: none found)
        self._lock = threading.Lock()
        self._busy: tuple | None = None
        self._stop = threading.Event()
        self._problems = ProblemLog(log, f"{cfg.id}: the job's 3MF over FTPS from {cfg.host}:{cfg.ftps_port}")
        self.attempts = 0  # tries made: for tests
        self.fetches = 0  # jobs whose fetch is over (result kept, or given up): for tests

    def material(self, key: tuple[str, str, int | None]) -> tuple | None:
        """The job's material from its 3MF, or None (not yet, or not to be had). The first call
        for a job starts its fetch; ``key``: (subtask_name, gcode_file, plate)."""
        with self._lock:
            if key in self._results:
                return self._results[key] or None
            if self._busy is not None or self._stop.is_set():
                return None
            self._busy = key
        threading.Thread(target=self._run, args=(key,), name=f"bambu 3mf {self.cfg.id}", daemon=True).start()
        return None

    @property
    def busy(self) -> bool:
        """A fetch is under way."""
        return self._busy is not None

    def known(self, key: tuple) -> tuple | None:
        """The material of a job fetched before, without starting a fetch."""
        with self._lock:
            return self._results.get(key) or None

    def forget(self, key: tuple) -> None:
        """Drop what was read for ``key``: a new job of the same name is fetched anew."""
        with self._lock:
            self._results.pop(key, None)

    def close(self) -> None:
        self._stop.set()

    def _run(self, key: tuple) -> None:
        uses: tuple = ()
        for attempt in range(ATTEMPTS):
            try:
                uses = self._fetch(*key)
                self._problems.note(None)
                break
            except Exception as exc:  # anything: described once, never raised into the printer's watch
                problem, again = self._describe(exc)
                if again and attempt + 1 < ATTEMPTS:  # said once, when it gives up
                    log.debug("%s: %s; trying again in %g s", self.cfg.id, problem, self.retry_after)
                    if self._stop.wait(self.retry_after):
                        break
                    continue
                self._problems.note(problem + "; the job's material comes without grams")
                break
            finally:
                self.attempts += 1
        with self._lock:
            self._results[key] = uses
            while len(self._results) > KEEP:
                self._results.popitem(last=False)
            self._busy = None
            self.fetches += 1
        if uses:
            self._changed()

    def _open(self) -> ImplicitFTPS:
        ftp = ImplicitFTPS(context=self._context, timeout=self.cfg.timeout * 3)
        try:
            ftp.connect(self.cfg.host, self.cfg.ftps_port)
            ftp.login(USER, self.cfg.access_code.reveal())
            ftp.prot_p()
        except BaseException:
            ftp.close()
            raise
        return ftp

    def _fetch(self, subtask: str, gcode_file: str, plate: int | None) -> tuple:
        deadline = self._monotonic() + DEADLINE
        ftp = self._connect()
        try:
            ftp.voidcmd("TYPE I")
            path, size = self._find(ftp, candidates(subtask, gcode_file))
            with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
                def keep(data: bytes) -> None:
                    if spool.tell() + len(data) > self.max_bytes:
                        raise TooLarge(f"the job's 3MF grew over {size_text(self.max_bytes)}")
                    if self._monotonic() > deadline or self._stop.is_set():
                        raise TimeoutError(f"the job's 3MF took longer than {DEADLINE:g} s")
                    spool.write(data)
                ftp.retrbinary(f"RETR {path}", keep)
                spool.seek(0)
                return slice_info.material(spool, plate)
        finally:
            try:
                ftp.quit()
            except (OSError, EOFError, ftplib.Error):
                ftp.close()

    def _find(self, ftp: ImplicitFTPS, paths: list[str]) -> tuple[str, int | None]:
        for path in paths:
            try:
                size = ftp.size(path)
            except ftplib.error_perm:  # 550: not there
                continue
            if size is not None and size > self.max_bytes:
                raise TooLarge(f"the job's 3MF is {size_text(size)}, over {size_text(self.max_bytes)}")
            return path, size
        raise NotFound()

    def _describe(self, exc: BaseException) -> tuple[str, bool]:
        """One line for the log (no access code, no file name), and whether to try again."""
        cfg = self.cfg
        if isinstance(exc, ftplib.error_perm) and str(exc).startswith("530"):
            return ("the printer refused the access code over FTPS (530) — check access_code_file / "
                    "access_code_env"), False
        if isinstance(exc, NotFound):
            return "the job's 3MF is not on the printer's storage (looked in / and /cache/)", True
        if isinstance(exc, slice_info.Unreadable):
            return f"the job's 3MF is unreadable: {exc}", False
        if isinstance(exc, TooLarge):
            return f"{exc}: not fetched", False
        if isinstance(exc, TimeoutError) and "3MF" in str(exc):
            return str(exc), False
        if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
            return "FTPS: " + tls.describe(exc, cfg.serial, cfg.host, cfg.ftps_port, cfg.timeout), False
        if isinstance(exc, (OSError, EOFError)):
            return "FTPS: " + tls.describe(exc, cfg.serial, cfg.host, cfg.ftps_port, cfg.timeout * 3), True
        if isinstance(exc, ftplib.Error):
            return f"FTPS: the printer answered {str(exc)[:3]}", False
        return f"FTPS: {type(exc).__name__}: {str(exc)[:200]}", False
