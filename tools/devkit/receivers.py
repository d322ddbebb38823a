"""Local receivers for alert tests and the latency benchmark: a webhook and an SMTP server.

Both listen on free loopback ports, record what arrives with its arrival time, and can be
switched to "down" (the webhook answers 503; closing it refuses connections).
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devkit.servers import free_port


class WebhookReceiver:
    def __init__(self, status: int = 204):
        self.status = status
        self.notes: list[dict] = []
        self.arrivals: list[float] = []
        self.refused = 0
        self._handler = self._make_handler()
        self._serve(0)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/printfarm"

    def _make_handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.status
                if status < 300:
                    receiver.arrivals.append(time.time())
                    receiver.notes.append(json.loads(body))
                else:
                    receiver.refused += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def _serve(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    def go_down(self) -> None:
        """Close the port: senders get 'connection refused'."""
        self.close()

    def hang(self) -> None:
        """The worst kind of down: the port accepts connections (into the backlog) but nothing
        ever answers, so every attempt waits for the sender's timeout."""
        self.close()
        self._hung = socket.socket()
        self._hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hung.bind(("127.0.0.1", self.port))
        self._hung.listen(128)

    def come_back(self) -> None:
        hung = getattr(self, "_hung", None)
        if hung is not None:
            hung.close()
            self._hung = None
        self._serve(self.port)

    def of(self, rule: str | None = None, kind: str | None = None) -> list[dict]:
        return [n for n in self.notes if (rule is None or n["rule"] == rule) and (kind is None or n["kind"] == kind)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SMTPReceiver:
    """aiosmtpd on a free loopback port; ``mails`` holds parsed messages.

    Plain and without auth by default. With ``cert``/``key`` it speaks TLS: STARTTLS (required
    before MAIL), or from the first byte with ``implicit_tls`` (SMTPS). With ``password`` it
    takes AUTH (over TLS only) for any user with that password; ``logins`` records every try.
    """

    def __init__(self, cert=None, key=None, implicit_tls: bool = False, password: str | None = None):
        from aiosmtpd.controller import Controller

        receiver = self
        self.mails: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, str]] = []

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.mails.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.port = free_port()
        options = self._tls_options(cert, key, implicit_tls)
        if password is not None:
            # aiosmtpd counts only STARTTLS as TLS: an SMTPS connection is TLS from the first byte.
            options.update(authenticator=self._authenticator(password), auth_require_tls=not implicit_tls)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    @staticmethod
    def _tls_options(cert, key, implicit_tls: bool) -> dict:
        if cert is None:
            return {}
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        return {"ssl_context": context} if implicit_tls else {"tls_context": context, "require_starttls": True}

    def _authenticator(self, password: str):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def check(server, session, envelope, mechanism, data):
            if not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            login = (data.login.decode(), data.password.decode())
            self.logins.append(login)
            return AuthResult(success=login[1] == password)

        return check

    @property
    def apprise_url(self) -> str:
        # mailto:// (not mailtos://) is plain SMTP; no user or password: no AUTH is tried.
        return (f"mailto://127.0.0.1:{self.port}?smtp=127.0.0.1&from=printfarm@example.org"
                f"&to=ops@example.org")

    def texts(self) -> list[tuple[str, str]]:
        out = []
        for mail in self.mails:
            body = mail.get_body(preferencelist=("plain", "html"))
            out.append((str(mail["Subject"]), body.get_content() if body else ""))
        return out

    def close(self) -> None:
        self.controller.stop()
