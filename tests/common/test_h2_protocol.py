"""HTTP/2 to clients in a real service process: httpx as clients use it, raw frames as attackers.

common/tls_app.py runs under ``serve()`` with a TLS listener (h2 by ALPN) and
an h2c listener, with small edge limits set through its environment. Nothing
asserts speed: limits are proven by what the server answers or how it ends the
connection, within generous bounds.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator

import h2.errors
import h2.events
import httpx
import psutil
import pytest
from common.tls_servers import (
    Certs,
    RawH2,
    client_context,
    goaway,
    json_body,
    make_certs,
    tls_app,
    tls_socket,
)
from hyperframe.frame import DataFrame, Frame, GoAwayFrame
from support.processes import ServiceProcess, free_port

pytestmark = pytest.mark.slow

MAX_STREAMS = 8
MAX_RESETS = 50
LIMITS = {
    "max_header_bytes": "4096",
    "max_header_count": "20",
    "header_timeout": "2",
    "keepalive_timeout": "2",
    "body_idle_timeout": "1",
    "http2_max_concurrent_streams": str(MAX_STREAMS),
    "http2_max_resets": str(MAX_RESETS),
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"tls": free_port(), "h2c": free_port()}


@pytest.fixture(scope="module")
def server(certs: Certs, ports: dict[str, int]) -> Iterator[ServiceProcess]:
    listeners = [
        {"port": ports["tls"], "certificates": certs.pairs()},
        {"port": ports["h2c"], "h2c": True},
    ]
    with tls_app(listeners, **LIMITS) as process:
        yield process


@pytest.fixture
def h2c(server: ServiceProcess, ports: dict[str, int]) -> Iterator[RawH2]:
    with socket.create_connection(("127.0.0.1", ports["h2c"]), timeout=10) as sock:
        yield RawH2(sock)


def test_h2_by_alpn_serves_the_app_per_stream(
    server: ServiceProcess, certs: Certs, ports: dict[str, int]
) -> None:
    with httpx.Client(http2=True, verify=client_context(certs.ca, ())) as client:
        base = f"https://localhost:{ports['tls']}"
        upload = client.post(base + "/echo?q=1", content=b"u" * 300_000)
        many = [client.get(base + f"/echo?n={n}") for n in range(30)]
    assert upload.http_version == "HTTP/2"
    seen = upload.json()
    assert (seen["http_version"], seen["scheme"], seen["body_size"]) == ("2", "https", 300_000)
    assert seen["headers"][0] == ["host", f"localhost:{ports['tls']}"]  # from :authority
    assert "connection" not in upload.headers  # the app's hop-by-hop field is dropped
    assert [r.json()["query"] for r in many] == [f"n={n}" for n in range(30)]


def test_h2c_prior_knowledge_and_http1_share_a_listener(
    server: ServiceProcess, ports: dict[str, int]
) -> None:
    url = f"http://127.0.0.1:{ports['h2c']}/echo"
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(url).json()["http_version"] == "2"
    assert httpx.get(url).json()["http_version"] == "1.1"


def test_not_http2_after_alpn_h2_is_closed(
    server: ServiceProcess, certs: Certs, ports: dict[str, int]
) -> None:
    with tls_socket(ports["tls"], certs.ca) as sock:
        assert sock.selected_alpn_protocol() == "h2"
        sock.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        sock.settimeout(10)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert b"HTTP/1.1" not in data  # a GOAWAY frame, then the end


def test_an_oversized_header_list_ends_the_connection(h2c: RawH2) -> None:
    h2c.request("/echo", headers=[("x-big", "b" * 8000)])
    events = h2c.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    terminated = goaway(events)
    assert terminated is not None or h2c.closed
    assert not any(isinstance(e, h2.events.ResponseReceived) for e in events)


def test_too_many_header_fields_are_431(h2c: RawH2) -> None:
    stream = h2c.request("/echo", headers=[(f"x-h{n}", "v") for n in range(30)])
    status, body = h2c.response(stream)
    assert status == 431
    assert json_body(body)["error"] == "too_many_headers"


def test_rapid_reset_ends_the_connection(h2c: RawH2) -> None:
    try:
        for _ in range(MAX_RESETS * 4):
            stream = h2c.request("/hold", end=False)
            h2c.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
            h2c.flush()
    except OSError:
        pass  # closed under us: the server had enough
    events = h2c.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    terminated = goaway(events)
    assert terminated is not None
    assert terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_reset_streams_whose_app_still_runs_count_against_the_stream_cap(h2c: RawH2) -> None:
    for _ in range(MAX_STREAMS):
        stream = h2c.request("/sleep?s=3")  # its app does not notice the reset for 3 s
        h2c.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
    h2c.flush()
    refused = h2c.request("/echo")
    events = h2c.until(
        lambda e: (
            isinstance(e, h2.events.StreamReset | h2.events.ResponseReceived)
            and e.stream_id == refused
        )
    )
    resets = [e for e in events if isinstance(e, h2.events.StreamReset) and e.stream_id == refused]
    assert resets and resets[0].error_code == h2.errors.ErrorCodes.REFUSED_STREAM


def test_more_streams_than_advertised_are_refused(h2c: RawH2) -> None:
    for _ in range(MAX_STREAMS):
        h2c.request("/sleep?s=2")
    extra = h2c.request("/echo")
    events = h2c.until(
        lambda e: (
            isinstance(e, h2.events.ConnectionTerminated)
            or (
                isinstance(e, h2.events.StreamReset | h2.events.ResponseReceived)
                and e.stream_id == extra
            )
        )
    )
    answered = [
        e for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == extra
    ]
    assert not answered


def test_sending_past_the_flow_control_window_ends_the_connection(h2c: RawH2) -> None:
    # /sleep reads no body while it sleeps, so nothing is acknowledged; /hold reads
    # (and drops) the body, and on a loaded machine its reads could open the window
    # between the client's writes, so the overrun never came
    stream = h2c.request("/sleep?s=5", method="POST", end=False)
    for _ in range(6):  # 6 x 16 KiB: past the 64 KiB stream window nobody acknowledged
        frame = DataFrame(stream)
        frame.data = b"d" * 16384
        h2c.sock.sendall(frame.serialize())
    events = h2c.until(lambda e: isinstance(e, h2.events.ConnectionTerminated))
    terminated = goaway(events)
    assert terminated is not None
    assert terminated.error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR


def test_a_reader_that_does_not_read_holds_the_app_back(server: ServiceProcess, h2c: RawH2) -> None:
    process = psutil.Process(server.pid)
    before = process.memory_info().rss
    stream = h2c.request("/stream?size=200000000&chunk=65536")  # 200 MB, never acknowledged
    received = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for event in h2c.events(timeout=0.2):
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                received += len(event.data or b"")
        if h2c.closed:
            break
    assert received <= 65535  # the client's window, never opened further
    assert process.memory_info().rss - before < 32 * 1024 * 1024


def test_one_huge_answer_does_not_starve_small_ones_on_the_connection(h2c: RawH2) -> None:
    big = h2c.request("/big?size=30000000")  # 30 MB in one body message
    small = [h2c.request(f"/echo?n={n}") for n in range(MAX_STREAMS - 1)]
    ended: list[int] = []
    while big not in ended and not h2c.closed:
        for event in h2c.events():
            if isinstance(event, h2.events.DataReceived):
                h2c.conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded):
                ended.append(event.stream_id)
        h2c.flush()
    assert set(small) <= set(ended[: ended.index(big)]), "small answers waited for the big one"


def test_a_stalled_request_body_is_408(h2c: RawH2) -> None:
    stream = h2c.request("/echo", method="POST", end=False)
    status, body = h2c.response(stream, timeout=10)
    assert status == 408
    assert json_body(body)["error"] == "body_timeout"


def test_an_idle_connection_is_closed(h2c: RawH2) -> None:
    events = h2c.until(lambda e: isinstance(e, h2.events.ConnectionTerminated), timeout=10)
    assert goaway(events) is not None or h2c.closed


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Upper", "1")],
        [("connection", "keep-alive")],
        [("te", "gzip")],
        [("host", "elsewhere.example")],
        [("transfer-encoding", "chunked")],
    ],
    ids=["uppercase", "connection", "te", "conflicting-host", "transfer-encoding"],
)
def test_malformed_heads_are_refused(h2c: RawH2, headers: list[tuple[str, str]]) -> None:
    stream = h2c.request("/echo", headers=headers)
    events = h2c.until(
        lambda e: (
            isinstance(e, h2.events.ConnectionTerminated)
            or (
                isinstance(e, h2.events.StreamReset | h2.events.StreamEnded)
                and e.stream_id == stream
            )
        )
    )
    answered = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert not answered or dict(answered[0].headers or [])[b":status"] == b"400"


def test_request_trailers_are_dropped(h2c: RawH2) -> None:
    stream = h2c.request("/echo", method="POST", end=False)
    h2c.conn.send_data(stream, b"body")
    h2c.conn.send_headers(
        stream, [(b"x-trailer", b"1"), (b"host", b"evil.example")], end_stream=True
    )
    h2c.flush()
    status, body = h2c.response(stream)
    seen = json_body(body)
    assert status == 200 and seen["body_size"] == 4
    names = [name for name, _ in seen["headers"]]
    assert "x-trailer" not in names
    assert ["host", "localhost"] in seen["headers"]


def _frames(sock: socket.socket) -> list[Frame]:
    """Every frame the server sends until it closes, parsed by hyperframe.

    The ``h2`` library, as a client, takes no frame after a GOAWAY (it would
    fail the streams still answered), so this reads the frames themselves.
    """
    data = b""
    sock.settimeout(10)
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    frames: list[Frame] = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


def test_shutdown_sends_goaway_and_finishes_streams_in_flight() -> None:
    port = free_port()
    with tls_app([{"port": port, "h2c": True}]) as process:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            client = RawH2(sock)
            stream = client.request("/sleep?s=1.5")
            client.until(lambda e: isinstance(e, h2.events.SettingsAcknowledged))
            time.sleep(0.3)  # the request is in
            assert process.process is not None
            process.process.send_signal(signal.SIGTERM)
            frames = _frames(sock)
        kinds = [(type(f).__name__, f.stream_id) for f in frames]
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert goaways and goaways[0].error_code == 0 and goaways[0].last_stream_id == stream
        first_goaway = frames.index(goaways[0])
        # the answer of the stream taken before the GOAWAY still comes, after it
        assert ("HeadersFrame", stream) in kinds[first_goaway:]
        ends = [f for f in frames if isinstance(f, DataFrame) and "END_STREAM" in f.flags]
        assert [f.stream_id for f in ends] == [stream]


def test_expect_100_continue_is_answered_when_the_app_reads(h2c: RawH2) -> None:
    stream = h2c.request("/echo", method="POST", end=False, headers=[("expect", "100-continue")])
    events = h2c.until(lambda e: isinstance(e, h2.events.InformationalResponseReceived))
    informational = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
    assert informational and dict(informational[0].headers or [])[b":status"] == b"100"
    h2c.conn.send_data(stream, b"after the go-ahead", end_stream=True)
    h2c.flush()
    status, body = h2c.response(stream)
    assert status == 200 and json_body(body)["body_size"] == len(b"after the go-ahead")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/a b"), ("GET", "/a#frag"), ("G T", "/"), ("GET", "no-slash")],
    ids=["space-in-path", "fragment", "space-in-method", "not-origin-form"],
)
def test_a_head_no_request_line_could_carry_is_400(h2c: RawH2, method: str, path: str) -> None:
    # a proxy writes :method and :path into an HTTP/1.1 request line: a space there
    # would split it, and the backend would read a different request
    stream = h2c.request(path, method=method)
    status, body = h2c.response(stream)
    assert status == 400
    assert json_body(body)["error"] == "bad_request"
