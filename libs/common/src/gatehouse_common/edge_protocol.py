"""uvicorn's httptools protocol held to the edge limits (:class:`EdgeLimits`).

uvicorn parses whatever a client sends: a head of any size and any number of
lines, as slowly as the client likes, and a request body that may stall
forever. One connection streaming a 120 MB header cost a worker 21 s of CPU
and 164 MB, and stalled every other request on it; 300 connections dripping
partial heads stayed open for minutes. Here each connection is bounded while
it is parsed, before any app code runs:

- the request line (414) and the head (431, by bytes and by line count) are
  counted as they arrive: in ``data_received`` (a single header line that never
  ends is buffered by httptools, not reported, so the bytes read while the head
  is incomplete are what bounds memory: at most ``max_header_bytes`` plus one
  read) and exactly in the ``on_url``/``on_header`` callbacks;
- one timer per connection, re-armed lazily from timestamps rather than on
  every read, bounds the head (``header_timeout`` -> 408), an idle keep-alive
  connection (``keepalive_timeout``, closed quietly) and a stalled request body
  while the app waits for it (``body_idle_timeout`` -> 408, and the app's
  ``receive()`` answers ``http.disconnect``);
- a worker holds at most ``max_connections`` client connections; more are
  closed at once and counted in ``gatehouse_connections_refused_total``;
- an answer given before the request body was read (an early 413, a refusal
  above) ends in a lingering close, as nginx's ``lingering_close``: the
  answer is written, the sending side shut down, and up to ``linger_bytes``
  read and dropped for up to ``linger_timeout`` before the socket closes.
  Closing at once with unread bytes makes the kernel send a reset, and the
  client loses the answer it has not read yet;
- the trailer fields of a chunked request are dropped: httptools reports them
  through ``on_header`` after the head, and uvicorn would append them to the
  request's headers, letting a trailer ``Host`` re-route a request.

Two things uvicorn gets wrong for a proxy are put right here too: a valid
method httptools does not know reaches the app
(:mod:`gatehouse_common.extension_methods`), and an HTTP/1.0 client is never
sent a chunked body (:mod:`gatehouse_common.close_delimited`).

The per-request cost is a few integer additions and comparisons and one clock
read per socket read; the timer is re-created at most once per keep-alive
interval, not per request. This relies on uvicorn's ``httptools_impl`` (0.54,
locked in uv.lock) as :mod:`gatehouse_common.http_protocol` does; the tests in
tests/common/test_edge_protocol.py hold it in place over real sockets.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, cast

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from gatehouse_common import edge_answers
from gatehouse_common.close_delimited import CloseDelimitedCycle
from gatehouse_common.edge_limits import EdgeLimits
from gatehouse_common.extension_methods import ExtensionMethods, fresh_parser
from gatehouse_common.http_protocol import CoalescingCycle
from gatehouse_common.metrics import CONNECTIONS_REFUSED

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGISendEvent
    from uvicorn.config import Config
    from uvicorn.server import ServerState

logger = logging.getLogger(__name__)

DEFAULT_LIMITS = EdgeLimits()

# The request line's method, spaces, version and CRLF, and each header line's ": "
# and CRLF, on top of the bytes httptools reports.
_REQUEST_LINE_FRAME = 16
_HEADER_LINE_FRAME = 4


# every request's task (see EdgeHttpToolsProtocol._start_asgi_task)
_TASK_NAME = "http-request"


class _CycleEvent(asyncio.Event):
    """A request cycle's ``message_event``, made without running any Python.

    uvicorn gives every cycle an ``asyncio.Event``, whose ``__init__`` (a Python
    frame and a ``deque``) cost about 1,500 instructions per request; most
    cycles (a request without a body, answered at once) never wait on it.
    Here the flag and the empty waiter list are class attributes until
    ``set()`` or a first ``wait()`` gives the instance its own.
    """

    __init__ = object.__init__
    _value = False
    _waiters: Any = ()

    async def wait(self) -> Literal[True]:
        if not self._value and self._waiters == ():
            self._waiters = collections.deque()
        return await super().wait()


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the answer is on the protocol."""


class EdgeCycle(RequestResponseCycle):
    """A request cycle that knows when the app answers before the body is in.

    Then the answer says ``Connection: close``, and the protocol, not uvicorn,
    closes the connection afterwards, lingering (see
    :meth:`EdgeHttpToolsProtocol.on_response_complete`).
    """

    async def send(self, message: ASGISendEvent) -> None:
        if not self.more_body or self.disconnected:  # the request body is all in
            await super().send(message)
            return
        if not self.response_started:
            self.keep_alive = False  # uvicorn writes Connection: close
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            # uvicorn would close at once: keep it open so that the protocol,
            # seeing the body unread, closes it lingering.
            self.keep_alive = True
        await super().send(message)
        if self.response_complete and not self.more_body and self.keep_alive:
            # the body arrived while the answer went out: the head said close
            self.transport.close()


class CoalescingEdgeCycle(EdgeCycle, CoalescingCycle):
    """:class:`EdgeCycle` writing a small response's head and body in one go."""


# An HTTP/1.0 request's cycle also answers a body of unknown length close-delimited
# (:mod:`gatehouse_common.close_delimited`). Only those requests pay for the check:
# every ``send`` of an HTTP/1.1 answer goes through one class fewer.
class EdgeCycle10(EdgeCycle, CloseDelimitedCycle):
    """:class:`EdgeCycle` for an HTTP/1.0 request."""


class CoalescingEdgeCycle10(EdgeCycle, CloseDelimitedCycle, CoalescingCycle):
    """:class:`CoalescingEdgeCycle` for an HTTP/1.0 request."""


# A request that declares no body is complete before its app runs (llhttp ends a
# bodiless message in the same read as its head), so EdgeCycle's check could never
# fire for it: its cycle leaves that layer out, one coroutine fewer per ``send``.
class CoalescingCycle10(CloseDelimitedCycle, CoalescingCycle):
    """:class:`CoalescingCycle` for an HTTP/1.0 request (no body declared)."""


def _declares_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a head's (lowercased) headers announce a body: chunked, or a length above 0."""
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip(b" 0")):
            return True
    return False


class EdgeHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` bounded by :class:`EdgeLimits` (see the module docstring).

    The limits come from ``config.edge_limits`` when the config carries them
    (:class:`gatehouse_common.server.EdgeConfig`), else the safe defaults.
    """

    # The edge's own state in slots: uvicorn's protocol keeps 28 attributes in the
    # instance dict, and past 30 (what a CPython 3.11 shared-key dict holds) every
    # attribute access of the protocol, uvicorn's included, costs about four times
    # as much (tests/common/test_edge_protocol.py holds the count).
    __slots__ = (
        "_head_seen",
        "_head_size",
        "_head_start",
        "_in_head",
        "_kept_alive",
        "_last_read",
        "_linger_left",
        "_lingering",
        "_max_count",
        "_max_head",
        "_max_line",
        "_methods",
        "_pending_refusal",
        "_time",
        "_timer",
        "limits",
    )

    cycle_class: type[RequestResponseCycle] = EdgeCycle
    cycle_class_http10: type[RequestResponseCycle] = EdgeCycle10
    # the classes for a request that declares no body (see _declares_body)
    bodiless_cycle_class: type[RequestResponseCycle] = RequestResponseCycle
    bodiless_cycle_class_http10: type[RequestResponseCycle] = CloseDelimitedCycle

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn decides on its access line by hasHandlers(), true as soon as the
        # root logger has a handler; our services disable "uvicorn.access" instead
        # (gatehouse_common.logs), so every request built the line's arguments (the
        # client address, the path quoted again) for a logger that drops it.
        self.access_log = self.access_log and not self.access_logger.disabled
        limits: EdgeLimits = getattr(config, "edge_limits", DEFAULT_LIMITS)
        self.limits = limits
        self._max_line = limits.max_request_line_bytes
        self._max_head = limits.max_header_bytes
        self._max_count = limits.max_header_count
        self._time = self.loop.time
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request head (or waiting for one)
        self._head_seen = 0  # bytes read while the head was incomplete
        self._head_size = 0  # the head's exact size, as far as parsed
        self._head_start = 0.0  # connection open, or the end of the previous response
        self._kept_alive = False  # the head being waited for follows a response
        self._last_read = 0.0
        self._lingering = False
        # a refusal owed once the answers before it are out (a bad pipelined head)
        self._pending_refusal: edge_answers.EdgeAnswer | None = None
        self._linger_left = 0
        self.url = b""
        self._methods = ExtensionMethods()

    # connection
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream server's connection is always given a Transport
        transport = cast(asyncio.Transport, transport)
        if len(self.connections) >= self.limits.max_connections:
            CONNECTIONS_REFUSED.inc()
            logger.debug("refused a connection: %d open", len(self.connections))
            self.transport = transport
            self._lingering = True  # whatever it sends is dropped
            transport.close()
            return
        super().connection_made(transport)
        now = self._time()
        self._head_start = self._last_read = now
        self._arm(now + self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            self._linger_left -= len(data)
            if self._linger_left <= 0:
                self.transport.close()
            return
        if self._pending_refusal is not None:
            return  # the parser failed on earlier bytes: nothing after them is a request
        self._last_read = self._time()
        if self._in_head:
            self._head_seen += len(data)
        data = self._methods.feed(data)
        try:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserInvalidMethodError as refused:
                self._feed_after(data, refused)
        except httptools.HttpParserCallbackError as exc:  # raised in a callback of ours?
            refusal = exc.__context__
            answer = refusal.args[0] if isinstance(refusal, _Refused) else None
            self._refuse(answer or edge_answers.BAD_REQUEST)
            return
        except httptools.HttpParserError:
            self._refuse(edge_answers.BAD_REQUEST)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._upgrade_declined()
            return
        if self._in_head and self._head_seen > self._max_head:
            # a line that has not ended yet (an over-long request line ends in on_url)
            self._refuse(edge_answers.HEADERS_TOO_LARGE)

    def _feed_after(self, data: bytes, refused: httptools.HttpParserInvalidMethodError) -> None:
        """llhttp ``refused`` a method in ``data`` (the parser is fed in
        ``data_received``, without a call of its own per read): a pipelined request
        with a method it does not know goes on in a new parser
        (:meth:`ExtensionMethods.resume`); anything else raises ``refused``."""
        while True:
            rest = self._methods.resume(data)
            if rest is None:
                raise refused
            self.parser = fresh_parser(self)
            data = rest
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserInvalidMethodError as again:
                refused = again

    def _upgrade_declined(self) -> None:
        """An ``Upgrade`` request no protocol here takes: it was read as plain HTTP.

        The parser stops after such a request, so nothing after it on the
        connection can be read: the answer closes the connection. (uvicorn logs
        a warning for each one, which a client could use to flood the logs.)
        """
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
        else:
            self.transport.close()

    def handle_websocket_upgrade(self) -> None:
        # the WebSocket protocol takes the transport and keeps its own time
        self._cancel_timer()
        super().handle_websocket_upgrade()

    # parser callbacks
    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)  # not super(): no super object per call
        self._methods.began()
        self._head_size = _REQUEST_LINE_FRAME

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._head_size += len(url)
        if len(self.url) > self._max_line:
            raise _Refused(edge_answers.URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a trailer field of a chunked body: never one of the request's headers
        self._head_size += len(name) + len(value) + _HEADER_LINE_FRAME
        if self._head_size > self._max_head:
            raise _Refused(edge_answers.HEADERS_TOO_LARGE)
        if len(self.headers) >= self._max_count:
            raise _Refused(edge_answers.TOO_MANY_HEADERS)
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        # a body may follow: its idle time is checked no later than body_idle_timeout
        # from now (a timer set for an earlier deadline is kept: it re-checks anyway)
        self._arm(self._last_read + self.limits.body_idle_timeout)
        if not self.url.startswith(b"/"):
            self._authority_from_target()
        if self.parser.should_upgrade() and self._has_body():
            # httptools skips the body of every upgrade request: declined, the body
            # would be left unread while the app waited for it; taken, it would be
            # lost (a WebSocket handshake is a GET without one, RFC 6455 section 4.1)
            raise _Refused(edge_answers.UPGRADE_WITH_BODY)
        self._start_cycle()
        method = self._methods.method()
        if method is not None:  # the parser read a stand-in: the app gets the real one
            self.scope["method"] = method

    def _start_cycle(self) -> None:
        """uvicorn's ``on_headers_complete`` (0.54), the cycle made with its class.

        The class depends on the request (see :meth:`_cycle_class`); uvicorn
        makes a ``RequestResponseCycle``, and changing an object's class leaves
        CPython 3.11 with a split dict on which no attribute access specialises,
        which copying the dict put right at a cost of its own. Made with its
        class from the start (and its arguments by position), the cycle costs
        neither.
        """
        parser = self.parser
        scope = self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        app: ASGI3Application
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        existing_cycle = self.cycle
        http10 = http_version == "1.0"
        self.cycle = self._cycle_class(http10)(
            scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            _CycleEvent(),
            self.expect_100_continue,
            not http10 and parser.should_keep_alive(),
            self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # a pipelined request waits for the answers before it
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """uvicorn's (0.54), the task made with a name of its own.

        ``loop.create_task`` (uvloop's) makes an unnamed ``asyncio.Task``, which
        formats a ``Task-<n>`` name for every request (about 1,400
        instructions); the same task made here is given one fixed name. With
        a task factory or uvicorn's ``reset_contextvars``, uvicorn's way.
        """
        loop = self.loop
        if self.config.reset_contextvars or loop.get_task_factory() is not None:
            HttpToolsProtocol._start_asgi_task(self, cycle, app)
            return
        task = asyncio.Task(cycle.run_asgi(app), loop=loop, name=_TASK_NAME)
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _cycle_class(self, http10: bool) -> type[RequestResponseCycle]:
        """The request's cycle: an HTTP/1.0 one, and without EdgeCycle's layer when
        the head declares no body (see :data:`bodiless_cycle_class`)."""
        if _declares_body(self.headers):
            return self.cycle_class_http10 if http10 else self.cycle_class
        return self.bodiless_cycle_class_http10 if http10 else self.bodiless_cycle_class

    def _has_body(self) -> bool:
        return _declares_body(self.headers)

    def _authority_from_target(self) -> None:
        """An absolute-form target names the host: it replaces any ``Host`` header.

        RFC 9112 section 3.2.2: a server receiving ``GET http://a.example/x``
        ignores ``Host`` and uses the target's authority, so what the app routes
        on is the host the client asked for, never a second opinion.
        """
        try:
            parsed = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            return  # asterisk-form and the like carry no authority
        host = parsed.host
        if not host:
            return
        if b":" in host:  # an IPv6 literal is bracketed, as in a Host header
            host = b"[" + host + b"]"
        authority = host if parsed.port is None else b"%b:%d" % (host, parsed.port)
        self.headers[:] = [(name, value) for name, value in self.headers if name != b"host"]
        self.headers.append((b"host", authority))

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_seen = 0
        self._methods.ended()
        HttpToolsProtocol.on_message_complete(self)

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self._lingering or self.transport.is_closing():
            return
        if self._pending_refusal is not None and not self.pipeline:
            answer, self._pending_refusal = self._pending_refusal, None
            self._refuse(answer)  # the cycle is complete now: the answer goes out
            return
        cycle = self.cycle
        if cycle.more_body and cycle.response_complete:
            self._linger()  # answered before the body was read (EdgeCycle)
            return
        self.flow.resume_reading()
        now = self._time()
        if self.pipeline:
            next_cycle, app = self.pipeline.pop()
            self._start_asgi_task(next_cycle, app)
            self._arm(now + self.limits.body_idle_timeout)
        else:
            self._head_start = now
            self._kept_alive = True
            self._arm(now + self.limits.keepalive_timeout)

    # the one timer
    def _arm(self, when: float) -> None:
        """Make the timer fire at ``when`` or earlier; firing early only re-checks."""
        timer = self._timer
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self._lingering or self.transport.is_closing():
            return
        now = self._time()
        limits = self.limits
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.more_body:
                return  # the app is at work on a whole request; its answer re-arms the timer
            if self.flow.read_paused or cycle.body or cycle.waiting_for_100_continue:
                # bytes wait for the app, or the client waits for "100 Continue": not a stall
                self._last_read = now
            deadline = self._last_read + limits.body_idle_timeout
            if now < deadline:
                self._arm(deadline)
            else:
                self._body_stalled(cycle)
            return
        idle = self._head_seen == 0
        if idle and self._kept_alive:
            deadline = self._head_start + limits.keepalive_timeout
        else:
            deadline = self._head_start + limits.header_timeout
        if now < deadline:
            self._arm(deadline)
        elif idle:
            self.transport.close()  # nothing asked: no answer owed
        else:
            self._refuse(edge_answers.HEAD_TIMEOUT)

    # endings
    def _body_stalled(self, cycle: RequestResponseCycle) -> None:
        """No body byte for ``body_idle_timeout`` while the app waits for one."""
        started = cycle.response_started
        cycle.disconnected = True  # the app's receive() answers http.disconnect, send() is a no-op
        cycle.message_event.set()
        if started:
            self.transport.close()
            return
        self.transport.write(edge_answers.BODY_TIMEOUT.render(self.server_state.default_headers))
        self._linger()

    def _refuse(self, answer: edge_answers.EdgeAnswer) -> None:
        """Answer a request the app will not see (or no longer reads), then close lingering."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self._in_head or cycle.response_started or self.pipeline:
                # a pipelined head went wrong while an answer is still to come or
                # going out: the refusal waits for the answers before it (which the
                # client is owed: their requests may have reached a backend)
                self._pending_refusal = answer
                return
            # the body went wrong while the app waits for it: it gets http.disconnect
            cycle.disconnected = True
            cycle.message_event.set()
        logger.info("refused a request: %d, %s", answer.status, self.client)
        self.transport.write(answer.render(self.server_state.default_headers))
        self._linger()

    def _linger(self) -> None:
        """Drop what still comes, and shut down the sending side once the answer is out.

        The shutdown waits one turn of the loop: this may run from inside a
        cycle's ``send()``, before a held head is written (a HEAD answer).
        """
        self._lingering = True
        self._cancel_timer()
        self._linger_left = self.limits.linger_bytes
        self.loop.call_soon(self._shut_down_writing)

    def _shut_down_writing(self) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        if not transport.can_write_eof():  # TLS has no half-close
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(self.limits.linger_timeout, transport.close)


class CoalescingEdgeHttpToolsProtocol(EdgeHttpToolsProtocol):
    """:class:`EdgeHttpToolsProtocol` writing a small response's head and body in one
    go (:mod:`gatehouse_common.http_protocol`)."""

    cycle_class = CoalescingEdgeCycle
    cycle_class_http10 = CoalescingEdgeCycle10
    bodiless_cycle_class = CoalescingCycle
    bodiless_cycle_class_http10 = CoalescingCycle10
