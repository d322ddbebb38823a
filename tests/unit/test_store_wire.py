"""server/store/wire.py: the hand-written /write request and answer, against a loopback socket
that answers what it is told to, byte for byte."""

from __future__ import annotations

import socket
import threading

import pytest

from server.store.wire import WireError, WriteConnection


class OneShotServer:
    """Accepts connections; to each request it sends the next of ``answers`` (closing the
    connection after it when the answer is None), recording every request's bytes."""

    def __init__(self, answers: list[bytes | None]):
        self.answers, self.requests = list(answers), []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while self.answers:
            conn, _ = self.sock.accept()
            with conn:
                while self.answers:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, body = data.split(b"\r\n\r\n", 1)
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(body) < length:
                        body += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + body)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break  # close: a kept-alive connection the server dropped
                    conn.sendall(answer)


def connection(server: OneShotServer) -> WriteConnection:
    return WriteConnection("127.0.0.1", server.port, 2.0, 2.0, {"Authorization": "Basic eDp5"})


def test_the_request_is_an_http_1_1_post_with_length_type_and_credentials():
    server = OneShotServer([b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: 1.6.7\r\n\r\n"])
    answer = connection(server).post("/write?db=x&precision=ms", b"m v=1i 1")
    assert answer.status == 204 and answer.data == b""
    assert server.requests == [b"POST /write?db=x&precision=ms HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                               b"Content-Type: text/plain\r\nAuthorization: Basic eDp5\r\nContent-Length: 8\r\n\r\n"
                               b"m v=1i 1" % server.port]


def test_an_error_answer_with_a_length_or_in_chunks_is_read_whole_and_the_connection_kept():
    error = b'{"error":"database not found: \\"x\\""}\n'
    server = OneShotServer([b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(error), error),
                            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                            b"6\r\n world\r\n0\r\n\r\n",
                            b"HTTP/1.1 204 No Content\r\n\r\n"])
    conn = connection(server)
    first = conn.post("/write?db=x", b"a")
    assert (first.status, first.data) == (404, error)
    second = conn.post("/write?db=x", b"b")
    assert (second.status, second.data) == (400, b"hello world")
    assert conn.post("/write?db=x", b"c").status == 204
    assert len(server.requests) == 3


def test_a_kept_alive_connection_the_server_dropped_is_opened_again_once():
    server = OneShotServer([b"HTTP/1.1 204 No Content\r\n\r\n", None, b"HTTP/1.1 204 No Content\r\n\r\n"])
    conn = connection(server)
    assert conn.post("/write", b"a").status == 204
    assert conn.post("/write", b"b").status == 204  # the first try met a closed connection
    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in server.requests] == [b"a", b"b", b"b"]


def test_garbage_or_nobody_listening_is_an_oserror():
    server = OneShotServer([b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(WireError, match="not an HTTP answer"):
        connection(server).post("/write", b"a")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with pytest.raises(OSError):
        WriteConnection("127.0.0.1", port, 1.0, 1.0, {}).post("/write", b"a")
