"""HTTP/2 to clients: an asyncio protocol serving the same ASGI app, one task per stream.

The framing, HPACK, stream states, flow-control accounting and the checks of
RFC 9113 section 8.2 (lower-case names, no connection-specific fields, pseudo
headers present once and first, ``Host`` agreeing with ``:authority``) are the
``h2`` library's; a malformed request ends the connection with its GOAWAY.
This module adds what a server at the edge owes, with the same
:class:`EdgeLimits` as HTTP/1.1 (:mod:`gatehouse_common.edge_protocol`):

- the header list is bounded by ``max_header_bytes`` (SETTINGS_MAX_HEADER_LIST_SIZE,
  enforced while decoding) and ``max_header_count`` (431);
- at most ``http2_max_concurrent_streams`` streams, counting those the client
  reset while their app still runs (REFUSED_STREAM past it), and at most
  ``http2_max_resets`` resets in 10 s before GOAWAY ENHANCE_YOUR_CALM, so
  "rapid reset" (CVE-2023-44487) cannot start unbounded work;
- a connection with no stream open is closed after ``keepalive_timeout``
  (``header_timeout`` before its first request), and a stream whose app waits
  for body bytes that do not come for ``body_idle_timeout`` is answered 408;
- backpressure both ways: a request body is acknowledged (WINDOW_UPDATE) only
  when the app reads it, so a stream holds at most its window (64 KiB) and a
  connection 1 MiB; an app's ``send()`` waits until its bytes are framed, which
  waits for the client's windows and for the socket to drain, and while the
  socket is backed up nothing more is read (pings and settings a client does
  not read the answers to cannot pile up);
- fairness: one writer (:mod:`gatehouse_common.h2_writer`) frames at most one
  DATA frame per stream in turn, so a stream with megabytes to send never
  holds back a small answer on the same connection;
- shutdown sends GOAWAY naming the last stream taken, lets those finish, and
  closes when the last one is done (uvicorn waits for it like any connection);
- trailers a client sends are dropped, as the HTTP/1.1 protocol drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.error_shape import error_body
from gatehouse_common.h2_stream import BadRequest, H2Stream, request_scope, response_headers
from gatehouse_common.h2_writer import FairWriter

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

CONNECTION_WINDOW = 1 << 20  # request body bytes buffered per connection, at most
RESET_WINDOW = 10.0  # seconds over which http2_max_resets counts

_JSON = (b"content-type", b"application/json")


def _refusal(status: int, code: str, detail: str) -> ASGI3Application:
    body = error_body(code, detail)
    headers = [_JSON, (b"content-length", b"%d" % len(body))]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


_BAD_REQUEST = _refusal(400, "bad_request", "The request is not a valid HTTP/2 request.")
_TOO_MANY_HEADERS = _refusal(
    431, "too_many_headers", "The request has more header fields than this server accepts."
)
_INTERNAL = error_body("internal_error", "an unexpected error occurred")
_BODY_TIMEOUT = error_body("body_timeout", "The request's body stopped arriving.")


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (see the module docstring)."""

    def __init__(
        self,
        *,
        app: ASGI3Application,
        server_state: ServerState,
        app_state: dict[str, Any],
        limits: EdgeLimits,
        root_path: str = "",
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.app = app
        self.server_state = server_state
        self.app_state = app_state
        self.limits = limits
        self.root_path = root_path
        self.loop = loop
        self.conn = H2Connection(
            H2Configuration(
                client_side=False, header_encoding=None, normalize_outbound_headers=False
            )
        )
        self.conn.local_settings = Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.http2_max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_bytes,
            },
        )
        # enforced from the first HEADERS, not only once the client acknowledged the setting
        self.conn.decoder.max_header_list_size = limits.max_header_bytes
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.running = 0  # app tasks alive, reset streams included
        self.writer = FairWriter(self.conn, loop, self._flush)
        self._closed = False
        self._going_away = False
        self._served = False
        self._idle_since = 0.0
        self._resets = 0
        self._resets_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._base: dict[str, Any] = {}

    # connection
    def connection_made(self, transport: asyncio.BaseTransport, preface: bytes = b"") -> None:
        """Start on ``transport``; ``preface`` is what was read before HTTP/2 was chosen."""
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self._base = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "2",
            "server": get_local_addr(transport),  # type: ignore[arg-type]
            "client": get_remote_addr(transport),  # type: ignore[arg-type]
            "scheme": "https" if transport.get_extra_info("sslcontext") else "http",
            "root_path": self.root_path,
        }
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        now = self.loop.time()
        self._idle_since = self._resets_since = now
        self._arm(now + self.limits.header_timeout)
        if preface:
            self.data_received(preface)
        else:
            self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server_state.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        for stream in self.streams.values():
            stream.disconnect()
        self.writer.close()

    def pause_writing(self) -> None:
        self.writer.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writer.paused = False
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()
        self.writer.kick()

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: GOAWAY now, close when the streams taken are done."""
        if self._closed or self._going_away:
            return
        self._going_away = True
        self._flush()
        goaway = GoAwayFrame(0)
        goaway.last_stream_id = self.conn.highest_inbound_stream_id
        goaway.error_code = ErrorCodes.NO_ERROR
        if self.transport is not None:
            self.transport.write(goaway.serialize())
        if not self.streams:
            self._close(ErrorCodes.NO_ERROR)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            events = self.conn.receive_data(data)
        except ProtocolError as exc:
            logger.info("HTTP/2 connection error from %s: %s", self._base.get("client"), exc)
            self._flush()  # h2 has written its GOAWAY
            self._abort()
            return
        now = self.loop.time()
        for event in events:
            if isinstance(event, DataReceived):
                self._on_data(event, now)
            elif isinstance(event, RequestReceived):
                self._on_request(event, now)
            elif isinstance(event, StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.end()
            elif isinstance(event, StreamReset):
                self._on_reset(event.stream_id, now)
            elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
                self.writer.unblock(getattr(event, "stream_id", 0))
            elif isinstance(event, ConnectionTerminated):
                self._going_away = True  # the client's GOAWAY: finish what is open
                if not self.streams:
                    self._close(ErrorCodes.NO_ERROR)
                    return
            # TrailersReceived (dropped), pings and settings (h2 answers them)
            if self._closed:
                return
        self.writer.pump()

    # events
    def _on_request(self, event: RequestReceived, now: float) -> None:
        stream_id = event.stream_id
        if self._going_away or self.running >= self.limits.http2_max_concurrent_streams:
            # a reset stream whose app still runs counts: resets cannot multiply work
            self._reset(stream_id, ErrorCodes.REFUSED_STREAM)
            self._count_reset(now)
            return
        headers = event.headers or []
        head_only = any(name == b":method" and value == b"HEAD" for name, value in headers)
        stream = H2Stream(self, stream_id, head_only=head_only, now=now)
        app = self.app
        try:
            scope = request_scope(
                headers,
                self._base,
                self.limits.max_header_count,
                body_follows=event.stream_ended is None,
            )
            scope["state"] = self.app_state.copy()
        except OverflowError:
            scope, app = {"type": "http"}, _TOO_MANY_HEADERS
        except BadRequest:
            scope, app = {"type": "http"}, _BAD_REQUEST
        stream.expect_continue = event.stream_ended is None and any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in headers
        )
        self.streams[stream_id] = stream
        self.running += 1
        self._served = True
        self._arm(now + self.limits.body_idle_timeout / 2)
        task = self.loop.create_task(self._run(stream, scope, app))
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)

    def _on_data(self, event: DataReceived, now: float) -> None:
        stream = self.streams.get(event.stream_id)
        size = event.flow_controlled_length or 0
        if stream is None or stream.reset or (stream.response_complete and stream.final_sent):
            # nobody reads it: give the connection's window back at once
            if size:
                self.conn.acknowledge_received_data(size, event.stream_id)
            return
        stream.data_received(event.data or b"", size, now)

    def _on_reset(self, stream_id: int, now: float) -> None:
        self._count_reset(now)
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream.disconnect()
        self.writer.drop(stream_id)

    def _count_reset(self, now: float) -> None:
        if now - self._resets_since > RESET_WINDOW:
            self._resets_since, self._resets = now, 0
        self._resets += 1
        if self._resets > self.limits.http2_max_resets:
            logger.warning("HTTP/2 client %s reset too many streams", self._base.get("client"))
            self._close(ErrorCodes.ENHANCE_YOUR_CALM)

    # the app
    async def _run(self, stream: H2Stream, scope: dict[str, Any], app: ASGI3Application) -> None:
        try:
            await app(scope, stream.receive, stream.send)  # type: ignore[arg-type]
        except Exception:
            logger.exception("Exception in ASGI application")
            if not stream.response_started and not stream.reset:
                self._answer(stream, 500, _INTERNAL)
        finally:
            self._stream_done(stream)

    def _stream_done(self, stream: H2Stream) -> None:
        self.running -= 1
        stream_id = stream.stream_id
        self.streams.pop(stream_id, None)
        self.writer.drop(stream_id)
        if not self._closed:
            if not stream.reset and not stream.response_complete:
                self._reset(stream_id, ErrorCodes.INTERNAL_ERROR)  # the app ended mid-answer
            elif not stream.reset and not stream.ended:
                # answered before the whole body came: the client may stop sending (RFC 9113 8.1)
                self._reset(stream_id, ErrorCodes.NO_ERROR)
            if stream.unacknowledged:
                self.conn.acknowledge_received_data(stream.unacknowledged, stream_id)
                stream.unacknowledged = 0
            stream.disconnect()
            if not self.streams:
                self._idle_since = self.loop.time()
                self._arm(self._idle_since + self.limits.keepalive_timeout)
                if self._going_away:
                    self._close(ErrorCodes.NO_ERROR)
                    return
            self.writer.kick()

    # what streams ask of the connection (gatehouse_common.h2_stream.StreamOwner)
    def read_body(self, stream: H2Stream, size: int) -> None:
        if size and not self._closed:
            self.conn.acknowledge_received_data(size, stream.stream_id)
            self.writer.kick()

    def send_continue(self, stream: H2Stream) -> None:
        if not self._closed:
            with contextlib.suppress(H2Error):
                self.conn.send_headers(stream.stream_id, [(b":status", b"100")])
            self.writer.kick()

    def start_response(
        self, stream: H2Stream, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if self._closed:
            return
        head = [(b":status", b"%d" % status)]
        head += response_headers(headers, self.server_state.default_headers)
        try:
            self.conn.send_headers(stream.stream_id, head)
        except H2Error as exc:  # a header value h2 will not send (a newline in it)
            logger.error("HTTP/2 response head not sent: %s", exc)
            self._reset(stream.stream_id, ErrorCodes.INTERNAL_ERROR)
            stream.disconnect()
            return
        self.writer.kick()

    async def write_body(self, stream: H2Stream, data: bytes, end: bool) -> None:
        if self._closed or stream.reset:
            return
        if not data:
            try:
                self.conn.end_stream(stream.stream_id)
            except H2Error:
                stream.disconnect()
            self.writer.kick()
            return
        await self.writer.write(stream.stream_id, data, end)

    def _answer(self, stream: H2Stream, status: int, body: bytes) -> None:
        """A whole small answer from the server itself (the app failed or stalled)."""
        stream.response_started = stream.response_complete = True
        head = [(b":status", b"%d" % status), _JSON, (b"content-length", b"%d" % len(body))]
        try:
            self.conn.send_headers(stream.stream_id, head)
            self.conn.send_data(stream.stream_id, body, end_stream=True)
        except H2Error:  # no window left for even this: the stream just ends
            self._reset(stream.stream_id, ErrorCodes.INTERNAL_ERROR)
        self.writer.kick()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self._closed:
            self.transport.write(data)

    # endings
    def _reset(self, stream_id: int, code: ErrorCodes) -> None:
        with contextlib.suppress(H2Error):  # already closed both ways
            self.conn.reset_stream(stream_id, code)

    def _close(self, code: ErrorCodes) -> None:
        """GOAWAY with ``code``, then close once it is written."""
        if self._closed:
            return
        with contextlib.suppress(H2Error):
            self.conn.close_connection(error_code=code)
        self._flush()
        self._abort()

    def _abort(self) -> None:
        """Stop serving; the GOAWAY already written reaches the client.

        Closing at once with the client's bytes unread makes the kernel send a
        reset, which can destroy the GOAWAY before the client reads it: on TCP
        the sending side is shut down and what still comes is dropped (as the
        HTTP/1.1 protocol lingers) for up to ``linger_timeout``.
        """
        transport = self.transport
        self.connection_lost(None)
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(self.limits.linger_timeout, transport.close)
        else:
            transport.close()

    # the one timer: idle connection, stalled request bodies
    def _arm(self, when: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = self.loop.time()
        limits = self.limits
        if not self.streams:
            wait = limits.keepalive_timeout if self._served else limits.header_timeout
            deadline = self._idle_since + wait
            if now >= deadline:
                self._close(ErrorCodes.NO_ERROR)
            else:
                self._arm(deadline)
            return
        for stream in list(self.streams.values()):
            stalled = now - stream.last_data >= limits.body_idle_timeout
            if stream.waiting and stalled and not stream.ended and not stream.reset:
                self._body_stalled(stream)
        self.writer.pump()
        self._arm(now + limits.body_idle_timeout / 2)

    def _body_stalled(self, stream: H2Stream) -> None:
        """No body byte for ``body_idle_timeout`` while the app waits: 408, as HTTP/1.1."""
        if stream.response_started:
            self._reset(stream.stream_id, ErrorCodes.CANCEL)
        else:
            self._answer(stream, 408, _BODY_TIMEOUT)
            self._reset(stream.stream_id, ErrorCodes.NO_ERROR)
        stream.disconnect()
