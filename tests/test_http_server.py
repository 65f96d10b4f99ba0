"""tfzoo.serving.http_server over real sockets on 127.0.0.1: keep-alive and pipelining, the server's own errors
(through `error_response`), deadlines against slow clients, load without resets, graceful stop.

Timeouts here are generous upper bounds that make a hung test fail instead of hang; nothing asserts timings.
"""
from __future__ import annotations

import http.client
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from tfzoo.serving.http_server import HttpOptions, HttpServer, Request, Response

TIMEOUT = 20.0  # seconds: only ever reached when something is broken


def app(request: Request) -> Response:
    """The test API: /echo answers the body as sent, /info describes the request, /raise fails."""
    path = request.target.partition("?")[0]
    if path == "/echo":
        return Response(200, request.body, "application/octet-stream")
    if path == "/info":
        return Response(200, json.dumps({"method": request.method, "target": request.target, "headers": request.headers,
                                         "host": request.header("HOST"), "length": len(request.body)}).encode())
    if path == "/raw":  # not UTF-8: must arrive as these very bytes
        return Response(200, b'{"text": "\xff\xfe caf\xc3\xa9"}')
    if path == "/raise":
        raise RuntimeError("handler bug")
    if path == "/bad-content-type":
        return Response(200, b"{}", "text/plain\r\nX-Injected: yes")
    return Response(404, b'{"error": "not found"}')


def error_response(status: int, message: str) -> Response:
    # "server_error" shows that an error response went through this callback.
    return Response(status, json.dumps({"error": message, "server_error": True}).encode())


@contextmanager
def serving(handler: Callable[[Request], Response] = app, **options: object) -> Iterator[HttpServer]:
    server = HttpServer(handler, error_response, "127.0.0.1", 0, HttpOptions(**options))  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop(grace_s=5)


class Parsed:
    """One response read off a raw socket."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> dict:
        return json.loads(self.body)


def parse_responses(data: bytes, head_only: bool = False) -> list[Parsed]:
    """Every response in `data` (1xx ones skipped); each must have Content-Type and Content-Length."""
    responses = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"incomplete response head {head!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        if int(status) < 200:
            continue
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        assert "content-type" in headers and "content-length" in headers, headers
        length = 0 if head_only else int(headers["content-length"])
        assert len(data) >= length, "response body cut short"
        responses.append(Parsed(int(status), headers, data[:length]))
        data = data[length:]
    return responses


def read_to_end(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a reset fails the test)."""
    sock.settimeout(TIMEOUT)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def exchange(port: int, data: bytes) -> list[Parsed]:
    """Send raw bytes on a new connection, read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        return parse_responses(read_to_end(sock))


def get(port: int, method: str = "GET", target: str = "/info", body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def assert_alive(port: int) -> None:
    response, body = get(port, "POST", "/echo", b"still serving")
    assert (response.status, body) == (200, b"still serving")


def assert_server_error(response: Parsed, status: int) -> None:
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.json()["server_error"] is True


# 1. Keep-alive, pipelining, Connection: close, HTTP/1.0, HEAD, chunked bodies, Expect: 100-continue.

def test_keep_alive_serves_many_requests_on_one_connection():
    with serving() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        connection.connect()
        sock = connection.sock
        for i in range(50):
            body = json.dumps({"i": i}).encode() * (i + 1)
            connection.request("POST", f"/echo?i={i}", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, body)
            assert response.getheader("Content-Type") == "application/octet-stream"
            assert response.getheader("Content-Length") == str(len(body))
            assert not response.will_close
            assert connection.sock is sock  # the same TCP connection all along
        connection.close()


def test_pipelined_requests_are_answered_in_order():
    with serving() as server:
        requests = b"".join(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            for body in (b"first", b"second" * 1000, b"third"))
        requests += b"GET /info?last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        responses = exchange(server.port, requests)
        assert [r.body for r in responses[:3]] == [b"first", b"second" * 1000, b"third"]
        info = responses[3].json()
        assert (info["method"], info["target"], info["host"]) == ("GET", "/info?last", "t")
        assert ["connection", "close"] in info["headers"]  # names lower-cased
        assert [r.headers.get("connection") for r in responses] == [None, None, None, "close"]


def test_connection_close_and_http_1_0_are_honoured():
    with serving() as server:
        close = b"GET /info HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        [response] = exchange(server.port, close)  # exchange() reads until the server closes
        assert response.status == 200 and response.headers["connection"] == "close"

        http10 = b"POST /echo HTTP/1.0\r\nContent-Length: 4\r\n\r\nold!"
        [response] = exchange(server.port, http10)
        assert (response.status, response.body) == (200, b"old!")
        assert response.headers["connection"] == "close"

        response, _ = get(server.port, headers={"Connection": "close"})  # http.client sees it too
        assert response.will_close


def test_head_gets_headers_only():
    with serving() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        connection.request("GET", "/raw")
        full = connection.getresponse().read()
        connection.request("HEAD", "/raw")
        head = connection.getresponse()
        assert head.status == 200 and head.getheader("Content-Length") == str(len(full))
        assert head.read() == b""
        connection.request("GET", "/raw")  # the connection is still in step
        assert connection.getresponse().read() == full
        connection.close()

        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"HEAD /raw HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = read_to_end(sock)
        assert data.endswith(b"\r\n\r\n")  # nothing after the head
        [response] = parse_responses(data, head_only=True)
        assert response.headers["content-length"] == str(len(full))


def test_chunked_request_body_is_decoded():
    with serving() as server:
        chunks = [b"a" * 10, b"b" * 5000, b"c"]
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
        [response] = exchange(server.port, b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                                            b"Connection: close\r\n\r\n" + body)
        assert (response.status, response.body) == (200, b"".join(chunks))

        def generate() -> Iterator[bytes]:
            yield from chunks

        response, data = get(server.port, "POST", "/echo", generate())  # http.client sends it chunked
        assert (response.status, data) == (200, b"".join(chunks))


def test_expect_100_continue():
    with serving(max_body_bytes=1000) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert sock.recv(1000) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body is sent
            sock.sendall(b"hello")
            head = b""
            while b"hello" not in head:
                head += sock.recv(1000)
            [response] = parse_responses(head)
            assert (response.status, response.body) == (200, b"hello")

        # Too large: refused at once, no "100 Continue", and the body never sent.
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
            [response] = parse_responses(read_to_end(sock))
        assert_server_error(response, 413)
        assert "5000" in response.json()["error"]


# 2. The server's own errors, each through error_response; 6. the server survives every one of them.

def _tls_client_hello() -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


MAX_HEADER = 8192
ABUSE = {
    "tls client hello": (_tls_client_hello(), 400),
    "binary garbage": (bytes(range(256)) * 16, 400),
    "malformed request line": (b"GET\r\n\r\n", 400),
    "not http": (b"HELLO THERE FRIEND\r\n\r\n", 400),
    "malformed header": (b"GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400),
    "nul in a header": (b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n", 400),
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "bad content length": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n", 400),
    "conflicting content lengths": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                                    400),
    "bad chunk": (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n", 400),
    "unsupported transfer encoding": (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "long url": (b"GET /" + b"a" * (2 * MAX_HEADER) + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "long header": (b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (MAX_HEADER + 100) + b"\r\n\r\n", 431),
    "many headers": (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * MAX_HEADER + b"\r\n", 431),
    "body over the limit": (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000, 413),
    "chunked body over the limit": (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + b"400\r\n" + b"x" * 1024 + b"\r\n" + b"0\r\n\r\n", 413),
}


@pytest.mark.parametrize("case", ABUSE)
def test_bad_requests_get_the_api_error_and_the_server_keeps_serving(case):
    data, status = ABUSE[case]
    with serving(max_header_bytes=MAX_HEADER, max_body_bytes=1000) as server:
        [response] = exchange(server.port, data)  # answered, then closed (no reset: exchange reads to EOF)
        assert_server_error(response, status)
        assert response.json()["error"]
        assert_alive(server.port)


@pytest.mark.parametrize(("head", "status"), [
    pytest.param(b"GET /" + b"a" * (2 * MAX_HEADER) + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, id="long url"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (2 * MAX_HEADER) + b"\r\n\r\n", 431,
                 id="long header"),
])
def test_oversized_head_in_pieces(head, status):
    # Sent in small pieces, the head is refused by h11's running limit rather than after it is complete.
    with serving(max_header_bytes=MAX_HEADER) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for start in range(0, len(head), 1024):
                sock.sendall(head[start:start + 1024])
                if select.select([sock], [], [], 0.005)[0]:  # answered already: stop sending
                    break
            [response] = parse_responses(read_to_end(sock))
        assert_server_error(response, status)
        assert_alive(server.port)


def test_large_body_over_the_limit_is_refused_readably():
    # http.client sends the whole body before it reads: the server drains it so the 413 is read, not a reset.
    with serving(max_body_bytes=1000) as server:
        response, body = get(server.port, "POST", "/echo", b"x" * (8 * 2**20))
        assert response.status == 413 and json.loads(body)["server_error"] is True
        assert_alive(server.port)


def test_handler_exception_is_a_500_and_the_connection_goes_on(caplog):
    with serving() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        with caplog.at_level(logging.ERROR, logger="tfzoo.serving.http_server"):
            connection.request("GET", "/raise")
            response = connection.getresponse()
            body = json.loads(response.read())
        assert response.status == 500 and body["server_error"] is True and "handler bug" in body["error"]
        assert any(record.exc_info and "handler bug" in str(record.exc_info[1]) for record in caplog.records)
        connection.request("POST", "/echo", body=b"next")  # the same connection still serves
        assert connection.getresponse().read() == b"next"
        connection.close()


def test_invalid_handler_response_is_a_500():
    with serving() as server:
        response, body = get(server.port, target="/bad-content-type")
        assert response.status == 500 and json.loads(body)["server_error"] is True
        assert response.getheader("X-Injected") is None


def test_response_bytes_are_sent_as_given():
    with serving() as server:
        response, body = get(server.port, target="/raw")
        assert response.status == 200
        assert body == b'{"text": "\xff\xfe caf\xc3\xa9"}'


def test_too_many_connections_get_503():
    with serving(max_connections=2) as server:
        first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        for connection in (first, second):  # both open and known to the server
            connection.request("GET", "/info")
            assert connection.getresponse().read()
        [response] = exchange(server.port, b"GET /info HTTP/1.1\r\nHost: t\r\n\r\n")
        assert_server_error(response, 503)
        first.close()
        deadline = time.monotonic() + TIMEOUT  # the server notices the close on its own time
        while True:
            try:
                assert_alive(server.port)
                break
            except (AssertionError, OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        second.close()


# 3. Slow and idle clients: deadlines, and no worker held.

def test_slowloris_connections_are_cut_off_and_hold_no_worker():
    with serving(header_timeout_s=1.0, workers=2) as server:
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) for _ in range(50)]
        head = b"GET /info HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"z" * 1000
        received: dict[socket.socket, bytes] = {}
        done = threading.Event()

        def trickle() -> None:
            # One byte per connection per round, until the server answers (or closes) each.
            position = 0
            deadline = time.monotonic() + TIMEOUT
            while len(received) < len(slow) and time.monotonic() < deadline:
                for sock in slow:
                    if sock not in received:
                        sock.send(head[position:position + 1])
                position += 1
                readable, _, _ = select.select([s for s in slow if s not in received], [], [], 0.1)
                for sock in readable:
                    received[sock] = read_to_end(sock)
            done.set()

        trickler = threading.Thread(target=trickle)
        trickler.start()
        try:
            response, body = get(server.port)  # answered meanwhile, on a new connection
            assert response.status == 200 and json.loads(body)["target"] == "/info"
            assert done.wait(TIMEOUT)
        finally:
            trickler.join(TIMEOUT)
            for sock in slow:
                sock.close()
        assert len(received) == len(slow)
        for data in received.values():  # the 408, or a bare close
            if data:
                [response] = parse_responses(data)
                assert_server_error(response, 408)
        assert any(received.values())
        assert_alive(server.port)


def test_body_deadline_is_408():
    with serving(body_timeout_s=1.0) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly a part")
            [response] = parse_responses(read_to_end(sock))
        assert_server_error(response, 408)
        assert_alive(server.port)


def test_silent_and_idle_connections_are_closed_without_a_word():
    with serving(header_timeout_s=1.0, keep_alive_timeout_s=1.0) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            assert read_to_end(sock) == b""  # connected, never sent anything
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
            [response] = parse_responses(read_to_end(sock))  # answered, then closed once idle
            assert response.body == b"ok" and "connection" not in response.headers


# 4. Load: no resets, no errors, right bodies.

def _load(port: int, threads: int, per_thread: int, new_connection_each_time: bool) -> list[str]:
    def client(index: int) -> list[str]:
        errors = []
        connection = None
        for i in range(per_thread):
            body = f"client {index} request {i} ".encode() * (1 + i % 50)
            try:
                if connection is None or new_connection_each_time:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
                connection.request("POST", "/echo", body=body)
                response = connection.getresponse()
                data = response.read()
                if response.status != 200 or data != body:
                    errors.append(f"{index}/{i}: {response.status} {data[:100]!r}")
            except Exception as error:  # noqa: BLE001 (every failure is counted and reported)
                errors.append(f"{index}/{i}: {error!r}")
                connection = None
            if new_connection_each_time and connection is not None:
                connection.close()
        if connection is not None:
            connection.close()
        return errors

    with ThreadPoolExecutor(threads) as pool:
        return [error for errors in pool.map(client, range(threads)) for error in errors]


def test_load_with_a_new_connection_per_request():
    with serving() as server:
        assert _load(server.port, threads=32, per_thread=20, new_connection_each_time=True) == []


def test_load_on_keep_alive_connections():
    with serving() as server:
        assert _load(server.port, threads=32, per_thread=50, new_connection_each_time=False) == []


# 5. Graceful stop.

def test_stop_answers_requests_in_flight_then_refuses_connections():
    started = threading.Semaphore(0)
    release = threading.Event()
    finished = []

    def blocking(request: Request) -> Response:
        if request.target.startswith("/slow/"):
            started.release()
            release.wait(TIMEOUT)  # in the handler until the test has seen stop() begin
            time.sleep(0.5)
            finished.append(request.target)
        return Response(200, request.target.encode())

    server = HttpServer(blocking, error_response, "127.0.0.1", 0)
    server.start()
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    idle.request("GET", "/idle")
    idle.getresponse().read()  # a keep-alive connection, idle when stop() comes
    with ThreadPoolExecutor(8) as pool:
        results = [pool.submit(get, server.port, "GET", f"/slow/{i}") for i in range(8)]
        for _ in range(8):  # all 8 in the handler
            assert started.acquire(timeout=TIMEOUT)
        stopper = threading.Thread(target=server.stop, kwargs={"grace_s": 10})
        stopper.start()
        # At once, with all 8 still in their handlers: no new connections, the idle one closed.
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT).close()
            except (ConnectionRefusedError, ConnectionResetError):  # reset: caught in the backlog as it closed,
                break  # never accepted (seen once in a fresh-clone .ci/run)
            assert time.monotonic() < deadline, "still accepting connections"
            time.sleep(0.01)
        assert idle.sock is not None and idle.sock.recv(1) == b""
        idle.close()
        assert not finished
        release.set()
        stopper.join(TIMEOUT)
        assert not stopper.is_alive()
        assert len(finished) == 8  # stop() returned after every request in flight was answered
        for i, result in enumerate(results):
            response, body = result.result(TIMEOUT)
            assert (response.status, body) == (200, f"/slow/{i}".encode())
            assert response.getheader("Connection") == "close"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)


def test_stop_gives_up_after_grace():
    entered, release = threading.Event(), threading.Event()

    def stuck(request: Request) -> Response:
        entered.set()
        release.wait(TIMEOUT)
        return Response(200, b"late")

    server = HttpServer(stuck, error_response, "127.0.0.1", 0)
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert entered.wait(TIMEOUT)
            server.stop(grace_s=0.5)  # returns, though the handler is still running
            assert not release.is_set()
            (response,) = parse_responses(read_to_end(sock))  # a request received is answered, never just closed
            assert response.status == 503 and response.json()["server_error"], response.body
            assert "not answered within the 0.5 s" in response.json()["error"]
    finally:
        release.set()


# Binding.

def test_bind_errors_and_ipv6():
    with serving() as server, pytest.raises(OSError):  # the port is taken
        HttpServer(app, error_response, "127.0.0.1", server.port)
    try:
        server6 = HttpServer(app, error_response, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    server6.start()
    try:
        connection = http.client.HTTPConnection("::1", server6.port, timeout=TIMEOUT)
        connection.request("POST", "/echo", body=b"v6")
        assert connection.getresponse().read() == b"v6"
        connection.close()
    finally:
        server6.stop(grace_s=5)
