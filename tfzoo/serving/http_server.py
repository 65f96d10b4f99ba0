"""A small HTTP/1.1 server for blocking request handlers: h11 framing, asyncio I/O, a bounded worker pool.

Design:
- One background thread runs an asyncio loop that owns every socket. Each connection is an asyncio Protocol that
  parses requests with an `h11.Connection` (sans-IO: request line and header validation, Content-Length and
  chunked framing, head size limit, pipelined bytes kept for the next request). Slow, idle or abusive clients
  therefore cost a socket and a few KiB, never a thread.
- Only a complete request (head and body) reaches the handler, which runs on a bounded ThreadPoolExecutor
  (handlers block: they run TensorFlow graphs). The loop writes its Response, head and body in one send; the
  head is formatted here rather than by h11 (a tenth of the cost), and the next request starts a fresh h11 state
  machine. A connection has at most one request in a handler; pipelined ones wait, answered in order.
- Deadlines, checked by one periodic sweep rather than a timer per request: the whole request head within
  `header_timeout_s` (408), the whole body within `body_timeout_s` after the head (408), an idle keep-alive
  connection is closed after `keep_alive_timeout_s`, and a response the client does not read within
  `send_timeout_s` is dropped.
- Errors the server itself produces (400, 408, 413, 414, 431, 500, 501, 503) go through the `error_response`
  callback, so an API writes them in its own format. After one the connection is closed "lingering": the write
  side is shut down and what the client still sends is read and thrown away for a bounded amount and time, so
  that it reads the error instead of getting a connection reset.
- `stop(grace_s)` closes the listening socket at once, closes idle connections, lets the requests already
  received be answered (with `Connection: close`); part of a request head, and any request not answered when
  `grace_s` has passed, gets a 503 error response before its connection closes (lingering, as above).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import math
import re
import resource
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

import h11

logger = logging.getLogger(__name__)

__all__ = ["ErrorResponse", "Handler", "HttpOptions", "HttpServer", "Request", "Response"]


@dataclass(frozen=True, slots=True)
class Request:
    """A complete HTTP request as the client sent it."""

    method: str  # "GET", "POST", ... as sent
    # The request target as sent (path and optional query, still percent-encoded). h11 admits only visible ASCII
    # here, so latin-1 decoding is exact (and cannot fail).
    target: str
    headers: tuple[tuple[str, str], ...]  # (lower-cased name, value), in the order sent; values decoded latin-1
    body: bytes  # chunked bodies arrive decoded

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive), or `default`."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), default)


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler answers: the body is sent as given (bytes, never re-encoded)."""

    status: int
    body: bytes
    content_type: str = "application/json"


Handler = Callable[[Request], Response]  # called on a worker thread; may block for a long time
ErrorResponse = Callable[[int, str], Response]  # how the server writes its own errors: (status, message) -> Response


def _default_max_connections() -> int:
    # Each connection is a file descriptor; leave half of the process's limit to everything else it opens.
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 1024
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(64, min(4096, soft // 2))


@dataclass(frozen=True)
class HttpOptions:
    """Limits and timeouts of an `HttpServer`."""

    max_body_bytes: int = 32 * 2**20
    """Larger request bodies get 413 (before they are read when Content-Length says so)."""
    workers: int = 64
    """Handler threads. A request waits for a free one; with server-side batching this bounds how many requests
    can be merged into one batch, hence a generous default (idle threads cost little)."""
    max_connections: int = field(default_factory=_default_max_connections)
    """Open connections; beyond this a new connection gets a 503 and is closed. Default: half the process's
    file descriptor limit, at most 4096."""
    header_timeout_s: float = 10.0
    """The whole request head (request line and headers) must arrive within this: from the connection's start
    for its first request, from the first byte for later ones. Otherwise 408 (or a silent close if nothing came)."""
    body_timeout_s: float = 60.0
    """The whole body must arrive within this after the head (32 MiB at ~0.5 MiB/s). Otherwise 408."""
    keep_alive_timeout_s: float = 75.0
    """An idle keep-alive connection is closed after this. Longer than the 60 s idle timeout of common load
    balancers, so that the balancer, not this server, closes a pooled connection (no race on reuse)."""
    max_header_bytes: int = 32 * 2**10
    """Request line plus headers; over it 431 (414 when the request line alone is too long)."""
    backlog: int = 4096
    """Listen backlog (the kernel caps it at net.core.somaxconn). A short queue resets connections under bursts."""
    send_timeout_s: float = 60.0
    """A response the client does not read within this is dropped and the connection closed."""
    max_drain_bytes: int = 256 * 2**20
    """After an error response that closes the connection (e.g. 413), at most this much of what the client
    still sends is read and discarded, so that it gets to read the error rather than a connection reset."""

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "workers", "max_connections", "max_header_bytes", "backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"HttpOptions.{name} must be at least 1, not {getattr(self, name)}")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_timeout_s", "send_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"HttpOptions.{name} must be positive, not {getattr(self, name)}")
        if self.max_drain_bytes < 0:
            raise ValueError(f"HttpOptions.max_drain_bytes must not be negative, not {self.max_drain_bytes}")


# An error response is followed by this long a wait for the client to finish sending and close (413: body_timeout_s).
_LINGER_S = 2.0
_STOPPING = "The server is shutting down"
# Pipelined data that arrives while a request is in its handler is buffered up to this much, then reading pauses.
_MAX_PIPELINED_BYTES = 256 * 2**10
# Bodies up to this size are joined to the head and go out in one send; larger ones are written separately
# rather than copied.
_JOIN_BODY_BYTES = 256 * 2**10

# A header value: visible latin-1 characters, spaces and tabs inside (RFC 9110 5.5); no CR or LF.
_HEADER_VALUE = re.compile(r"[\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?")
_REASONS = {status.value: status.phrase.encode("latin-1") for status in HTTPStatus}

# Connection states.
_IDLE = 0  # no byte of the next request yet
_HEAD = 1  # part of a request head received
_BODY = 2  # head received, reading the body
_HANDLER = 3  # the request is with the handler
_WRITING = 4  # answered; the client has not read the response yet (transport paused writing)
_LINGER = 5  # error sent, write side shut down, discarding input until the client closes
_CLOSING = 6  # close() called; the transport is flushing
_CLOSED = 7

_date_cache: tuple[int, bytes] = (0, b"")
_valid_content_types: set[str] = set()


def _tokens(value: bytes) -> list[bytes]:
    """The comma-separated tokens of a header value, lower-cased."""
    return [token.strip() for token in value.lower().split(b",")]


def _invalid(response: Response) -> str | None:
    """Why `response` cannot be written as it is, or None."""
    if type(response.status) is not int or not 200 <= response.status <= 999:
        return f"status {response.status!r} is not a final HTTP status"
    if not isinstance(response.body, (bytes, bytearray)):
        return f"the body is {type(response.body).__name__}, not bytes"
    content_type = response.content_type
    if content_type not in _valid_content_types:  # a handful of distinct values: check each once
        if not isinstance(content_type, str) or not _HEADER_VALUE.fullmatch(content_type):
            return f"content type {content_type!r} is not a valid header value"
        if len(_valid_content_types) < 64:
            _valid_content_types.add(content_type)
    return None


def _http_date() -> bytes:
    # The Date header, formatted once per second (formatdate costs more than the rest of a response head).
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


class _Shared:
    """What all connections of one server share; touched only on the loop thread (except `call_handler`)."""

    def __init__(self, handler: Handler, error_response: ErrorResponse, options: HttpOptions):
        self.handler = handler
        self.error_response = error_response
        self.options = options
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by HttpServer.start
        self.pool: concurrent.futures.ThreadPoolExecutor = None  # type: ignore[assignment]
        self.connections: set[_Connection] = set()
        self.active = 0  # connections counted against max_connections
        self.stopping = False
        self.drained: asyncio.Event | None = None
        # The sweep's period: a fraction of the shortest timeout, so that deadlines are late by at most ~25%.
        shortest = min(options.header_timeout_s, options.body_timeout_s, options.keep_alive_timeout_s,
                       options.send_timeout_s)
        self.tick = min(1.0, max(0.05, shortest / 4))
        self._sweep_handle: asyncio.TimerHandle | None = None

    def start_sweep(self) -> None:
        self._sweep_handle = self.loop.call_later(self.tick, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in [c for c in self.connections if c.deadline <= now]:
            try:
                connection.deadline_passed()
            except Exception:  # one broken connection must not stop the deadlines of all the others
                logger.exception("closing a connection after its deadline failed")
                connection.abort()
        self._sweep_handle = self.loop.call_later(self.tick, self._sweep)

    def error(self, status: int, message: str) -> Response:
        """The server's own error response, through the API's `error_response`; a plain JSON one if that fails."""
        try:
            response = self.error_response(status, message)
            problem = _invalid(response) if isinstance(response, Response) else f"{type(response)}, not a Response"
            if problem is None:
                return response
            logger.error("error_response(%d, ...) cannot be sent: %s", status, problem)
        except Exception:
            logger.exception("error_response(%d, %r) failed", status, message)
        return Response(status, json.dumps({"error": message}).encode())

    def call_handler(self, connection: _Connection, request: Request) -> None:
        """Run on a worker thread: the handler, then its response handed to the loop."""
        response: Response | None = None
        error: BaseException | None = None
        try:
            response = self.handler(request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {type(response).__name__}, not a Response")
        except BaseException as exc:  # any failure costs this request a 500, not the connection
            logger.exception("handler failed on %s %s", request.method, request.target)
            response, error = None, exc
        try:
            self.loop.call_soon_threadsafe(connection.answer, response, error)
        except RuntimeError:  # the loop is closed: stop() gave up waiting for this request
            logger.warning("%s %s finished after the server stopped; its response is dropped",
                           request.method, request.target)

    def connection_closed(self) -> None:
        if self.stopping and not self.connections and self.drained is not None:
            self.drained.set()

    async def shutdown(self, server: asyncio.Server, grace_s: float) -> None:
        """Stop accepting, close idle connections, wait up to grace_s for the rest to be answered, close them."""
        self.stopping = True
        server.close()  # the listening socket closes now: new connections are refused
        self.drained = asyncio.Event()
        for connection in list(self.connections):
            connection.begin_stop()
        if self.connections:
            try:
                await asyncio.wait_for(self.drained.wait(), grace_s)
            except TimeoutError:
                logger.warning("stopping: %d connection(s) still busy after %.1f s are answered 503 and closed",
                               len(self.connections), grace_s)
                for connection in list(self.connections):
                    connection.grace_passed(grace_s)
                # The 503s go out and are read (lingering close) for at most _LINGER_S more.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.drained.wait(), _LINGER_S)
        for connection in list(self.connections):
            connection.abort()
        await asyncio.sleep(0)  # let the aborted transports run connection_lost
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()


class _Connection(asyncio.Protocol):
    """One client connection: h11 state, deadlines, and at most one request in a handler."""

    def __init__(self, shared: _Shared):
        self._shared = shared
        self._options = shared.options
        self._transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=shared.options.max_header_bytes)
        self._state = _IDLE
        self.deadline = math.inf  # loop time at which deadline_passed() is due
        self._first = True  # no request started yet: the head deadline runs from the connection's start
        self._counted = False
        self._method = ""
        self._target = ""
        self._headers: tuple[tuple[str, str], ...] = ()
        self._head_only = False
        self._keep_alive = True
        self._pending = False  # bytes of the next request arrived with the last one
        self._body: list[bytes | bytearray] = []
        self._body_bytes = 0
        self._buffered = 0  # bytes received while a request is in its handler
        self._reading_paused = False
        self._writing_paused = False
        self._eof = False
        self._close_after_response = False
        self._drain_left = 0

    # asyncio.Protocol callbacks (loop thread).

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio already sets TCP_NODELAY on TCP transports: a response goes out without waiting for an ACK.
        self._transport = transport  # type: ignore[assignment]
        shared = self._shared
        shared.connections.add(self)
        if shared.stopping:  # accepted just before the listening socket closed: its request will not be served
            self._fail(503, _STOPPING)
            return
        if shared.active >= self._options.max_connections:
            logger.warning("refusing a connection: %d open (max_connections)", shared.active)
            self._fail(503, f"Too many connections: this server takes at most {self._options.max_connections}")
            return
        shared.active += 1
        self._counted = True
        self.deadline = shared.loop.time() + self._options.header_timeout_s

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _LINGER:
            self._drain_left -= len(data)
            if self._drain_left < 0:  # the client keeps sending: stop listening
                self.abort()
            return
        if state >= _CLOSING:
            return
        self._h11.receive_data(data)
        if state == _HANDLER or state == _WRITING:
            # Pipelined: parsed once this request is answered; stop reading if the client sends too much ahead.
            self._pending = True
            self._buffered += len(data)
            if self._buffered > _MAX_PIPELINED_BYTES and not self._reading_paused:
                self._reading_paused = True
                self._transport.pause_reading()
            return
        if state == _IDLE:
            self._state = _HEAD
            if not self._first:
                self.deadline = self._shared.loop.time() + self._options.header_timeout_s
        self._process()

    def eof_received(self) -> bool:
        self._eof = True
        state = self._state
        if state == _HANDLER or state == _WRITING:
            # A client may half-close after its request: answer it, then close (see _next_request).
            self._h11.receive_data(b"")
            self._pending = True
            return True
        # Idle, or a request that can no longer be completed, or lingering: nothing more to say.
        self._close()
        return True  # closed above (the transport flushes what it has first)

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _CLOSED
        self.deadline = math.inf
        shared = self._shared
        shared.connections.discard(self)
        if self._counted:
            self._counted = False
            shared.active -= 1
        shared.connection_closed()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._state == _WRITING:
            self._next_request()

    # Parsing.

    def _process(self) -> None:
        """Feed h11's events until it needs more data or a request is complete."""
        h11_connection = self._h11
        while True:
            try:
                event = h11_connection.next_event()
            except h11.RemoteProtocolError as exc:
                self._protocol_error(exc)
                return
            kind = type(event)
            if kind is h11.Data:
                self._body.append(event.data)
                self._body_bytes += len(event.data)
                if self._body_bytes > self._options.max_body_bytes:  # chunked: no Content-Length to refuse first
                    self._fail(413, self._too_large(f"over {self._options.max_body_bytes}"),
                               linger_s=self._options.body_timeout_s)
                    return
            elif kind is h11.Request:
                if not self._head(event):
                    return
            elif kind is h11.EndOfMessage:
                self._dispatch()
                return
            elif kind is h11.ConnectionClosed:
                self._close()
                return
            else:  # NEED_DATA; PAUSED cannot happen: the previous request was answered before parsing on
                return

    def _head(self, event: h11.Request) -> bool:
        """A request head arrived: check its size, refuse an oversized body; False if the connection is done."""
        options = self._options
        line_bytes = len(event.method) + len(event.target) + 11  # "M T HTTP/1.1\r\n"
        size = line_bytes
        content_length = -1
        expect_continue = False
        # h11 keeps HTTP/1.0 connections only for one request; so does this server.
        keep_alive = event.http_version >= b"1.1"
        headers = []
        for raw_name, value in event.headers.raw_items():  # cheaper than h11's Sequence iteration
            name = raw_name.lower()
            size += len(name) + len(value) + 4
            if name == b"content-length":
                content_length = int(value)  # h11 checked it is digits
            elif name == b"connection":
                keep_alive = keep_alive and b"close" not in _tokens(value)
            elif name == b"expect":
                expect_continue = value.lower() == b"100-continue"
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        self._keep_alive = keep_alive
        self._method = event.method.decode("latin-1")
        self._target = event.target.decode("latin-1")
        self._head_only = event.method == b"HEAD"
        # h11 enforces max_incomplete_event_size only on a head that arrives in pieces; this catches one that
        # arrived whole.
        if size > options.max_header_bytes:
            self._head_too_large(line_complete=line_bytes <= options.max_header_bytes)
            return False
        if content_length > options.max_body_bytes:
            # Refused before the body is read, and before "100 Continue" asks the client to send it.
            self._fail(413, self._too_large(str(content_length)), drain_bytes=content_length,
                       linger_s=options.body_timeout_s)
            return False
        self._headers = tuple(headers)
        self._body = []
        self._body_bytes = 0
        self._state = _BODY
        self.deadline = self._shared.loop.time() + options.body_timeout_s
        if expect_continue and event.http_version >= b"1.1":
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _too_large(self, length: str) -> str:
        return (f"Request body of {length} bytes is larger than this server's limit of "
                f"{self._options.max_body_bytes} bytes")

    def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if self._eof:  # the client stopped sending mid-request: nobody to tell
            self._close()
            return
        status = exc.error_status_hint
        if status == 431:  # h11's running limit on a head that arrives in pieces
            self._head_too_large(line_complete=b"\n" in self._h11.trailing_data[0])
            return
        logger.debug("bad request from %s: %s", self._peer(), exc)
        self._fail(status, f"Bad request: {exc}" if status == 400 else str(exc) or HTTPStatus(status).phrase)

    def _head_too_large(self, line_complete: bool) -> None:
        limit = self._options.max_header_bytes
        logger.debug("request head from %s over %d bytes", self._peer(), limit)
        if line_complete:
            self._fail(431, f"Request headers are larger than this server's limit of {limit} bytes")
        else:  # the request line alone is over the limit: in practice, the URL
            self._fail(414, f"Request line is longer than this server's limit of {limit} bytes")

    def _dispatch(self) -> None:
        """A complete request: to a worker thread."""
        body = self._body
        data = b"" if not body else bytes(body[0]) if len(body) == 1 else b"".join(body)
        self._body = []
        self._state = _HANDLER
        self.deadline = math.inf  # the handler may take as long as it needs; the API bounds it if it wants
        request = Request(self._method, self._target, self._headers, data)
        self._shared.pool.submit(self._shared.call_handler, self, request)

    # Answering.

    def answer(self, response: Response | None, error: BaseException | None) -> None:
        """The handler's response (loop thread)."""
        if self._state != _HANDLER:  # the connection was closed meanwhile
            return
        try:
            self._answer(response, error)
        except Exception:  # a bug here must cost this connection, not leave it waiting forever
            logger.exception("answering %s %s failed", self._method, self._target)
            self.abort()

    def _answer(self, response: Response | None, error: BaseException | None) -> None:
        if response is None:
            response = self._shared.error(500, f"Internal error: {error!r}")
        elif (problem := _invalid(response)) is not None:
            logger.error("%s %s: the handler's response cannot be sent: %s", self._method, self._target, problem)
            response = self._shared.error(500, f"Internal error: invalid response: {problem}")
        close = not self._keep_alive or self._close_after_response or self._shared.stopping
        self._write(response, close)
        self._head_only = False
        if close:
            self._close()
            return
        # The next request gets a fresh h11 state machine holding what the client already sent of it. h11 parses
        # and frames requests; responses are written here directly, which costs a tenth of h11's validation and
        # state bookkeeping per response (responses come from our own code, so there is little to validate).
        leftover, closed = self._h11.trailing_data
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self._options.max_header_bytes)
        if leftover:
            self._h11.receive_data(leftover)
        if closed:
            self._h11.receive_data(b"")
        self._pending = bool(leftover) or closed
        if self._writing_paused:  # the client is not reading: no next request until it catches up
            self._state = _WRITING
            self.deadline = self._shared.loop.time() + self._options.send_timeout_s
            return
        self._next_request()

    def _write(self, response: Response, close: bool) -> None:
        """Write a response in one send (HEAD: headers only)."""
        status = response.status
        body = response.body
        if status == 204 or status == 304:  # no body, no length (RFC 9110 8.6)
            head = b"HTTP/1.1 %d %s\r\nDate: %s\r\n" % (status, _REASONS.get(status, b""), _http_date())
            body = b""
        else:
            head = (b"HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                    % (status, _REASONS.get(status, b""), _http_date(), response.content_type.encode("latin-1"),
                       len(body)))
            if self._head_only:
                body = b""
        head += b"Connection: close\r\n\r\n" if close else b"\r\n"
        if len(body) <= _JOIN_BODY_BYTES:
            self._transport.write(head + body)
        else:  # not worth copying
            self._transport.write(head)
            self._transport.write(body)

    def _next_request(self) -> None:
        """After a response: parse a pipelined request, or wait idle for the next one."""
        self._first = False
        self._buffered = 0
        if self._reading_paused:
            self._reading_paused = False
            self._transport.resume_reading()
        if self._pending:  # part or all of the next request is here already (or the client closed)
            self._state = _HEAD
            self.deadline = self._shared.loop.time() + self._options.header_timeout_s
            self._process()
        else:
            self._state = _IDLE
            self.deadline = self._shared.loop.time() + self._options.keep_alive_timeout_s

    # Closing.

    def _fail(self, status: int, message: str, drain_bytes: int = -1, linger_s: float = _LINGER_S) -> None:
        """Send the server's own error response, then close lingering (read and drop what the client still
        sends, up to `drain_bytes` and `linger_s`), so the client reads the error rather than a reset."""
        response = self._shared.error(status, message)
        self._write(response, close=True)
        if self._reading_paused:
            self._reading_paused = False
            self._transport.resume_reading()
        if self._eof:
            self._close()
            return
        self._state = _LINGER
        limit = self._options.max_drain_bytes
        self._drain_left = limit if drain_bytes < 0 else min(drain_bytes, limit)
        self.deadline = self._shared.loop.time() + linger_s
        self._transport.write_eof()  # FIN after the response: the client sees the end, we keep reading

    def _close(self) -> None:
        """Close after what was written is sent, within send_timeout_s."""
        if self._state >= _CLOSING:
            return
        self._state = _CLOSING
        self.deadline = self._shared.loop.time() + self._options.send_timeout_s
        self._transport.close()

    def abort(self) -> None:
        """Close now, dropping anything unsent."""
        if self._state != _CLOSED and self._transport is not None:
            self._state = _CLOSING
            self.deadline = math.inf
            self._transport.abort()

    def deadline_passed(self) -> None:
        """The sweep found this connection's deadline passed."""
        state = self._state
        if state == _IDLE:  # nothing sent (keep-alive idle, or a silent new connection): close without a word
            self._close()
        elif state == _HEAD or state == _BODY:
            part = "head" if state == _HEAD else "body"
            limit = self._options.header_timeout_s if state == _HEAD else self._options.body_timeout_s
            logger.debug("request %s from %s not complete within %.1f s", part, self._peer(), limit)
            self._fail(408, f"Request {part} not received within {limit:g} s")
        else:  # a response not read, a close not flushed, lingering done
            self.abort()

    def begin_stop(self) -> None:
        """The server is stopping: close unless a received request is owed an answer; part of a request head gets a
        503 (its request will not be served), a request whose head arrived is served if it completes in time."""
        if self._state in (_IDLE, _WRITING):
            self._close()
        elif self._state == _HEAD:
            self._fail(503, _STOPPING)
        elif self._state in (_BODY, _HANDLER):
            self._close_after_response = True

    def grace_passed(self, grace_s: float) -> None:
        """The server's stop waited `grace_s` for this connection: a request still arriving or with its handler
        gets a 503 now (the handler's late response is dropped), never a close without a response."""
        if self._state in (_HEAD, _BODY, _HANDLER):
            self._fail(503, f"{_STOPPING}: the request was not answered within the {grace_s:g} s given to "
                            "requests in flight")

    def _peer(self) -> str:
        peer = self._transport.get_extra_info("peername") if self._transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket on host:port (IPv4 or IPv6 as the host resolves; "" for every interface)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            # A restarted server must not wait out TIME_WAIT connections of its predecessor.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(backlog)  # now, so connections made before start() wait in the queue
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot resolve {host!r}")


class HttpServer:
    """HTTP/1.1 on host:port: requests to `handler` on a bounded worker pool, the server's own errors written by
    `error_response`. Binds when made (so `port` is known; port 0 picks a free one); serves after `start()`."""

    def __init__(self, handler: Handler, error_response: ErrorResponse, host: str, port: int,
                 options: HttpOptions = HttpOptions()):
        self.options = options
        self._sock = _bind(host, port, options.backlog)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._shared = _Shared(handler, error_response, options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Serve on a background thread running an asyncio loop; returns once it accepts connections."""
        with self._lock:
            if self._thread is not None or self._stopped:
                raise RuntimeError("HttpServer.start() may be called once, before stop()")
            self._loop = asyncio.new_event_loop()
            self._shared.loop = self._loop
            self._shared.pool = concurrent.futures.ThreadPoolExecutor(
                self.options.workers, thread_name_prefix=f"http-{self.port}-worker")
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            # Daemon: a server never stopped must not keep the process alive; stop() is the graceful way out.
            self._thread = threading.Thread(target=self._run, args=(ready,), name=f"http-{self.port}", daemon=True)
            self._thread.start()
        try:
            ready.result()
        except BaseException:
            self._shared.pool.shutdown(wait=False)
            raise

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            shared = self._shared
            # backlog again: asyncio calls listen() once more with it (its default is 100).
            self._server = loop.run_until_complete(loop.create_server(
                lambda: _Connection(shared), sock=self._sock, backlog=self.options.backlog))
            shared.start_sweep()
        except BaseException as exc:  # noqa: BLE001 (raised again by start(), on the caller's thread)
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting connections now, close idle ones, answer the requests already received (with
        `Connection: close`) for up to `grace_s` seconds, then answer those left with a 503 and close everything
        (within `_LINGER_S` more). Call it from any thread but a handler's (whose own request would then wait out
        the grace period)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, server = self._loop, self._server
        if loop is None or server is None:  # never started, or failed to
            self._sock.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shared.shutdown(server, grace_s), loop).result(grace_s + 10)
        except Exception:
            logger.exception("stopping the HTTP server on port %d failed", self.port)
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            # Handlers still running after the grace period finish on their own; their responses are dropped.
            self._shared.pool.shutdown(wait=False, cancel_futures=True)
            self._sock.close()
