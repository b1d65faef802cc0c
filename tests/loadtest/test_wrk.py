"""Reading wrk's output: the report script's line, and what is wrong without it."""

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gatehouse_loadtest.wrk import REPORT_SCRIPT, WrkError, parse_wrk_output, wrk_command

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:41000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  300.00us   9.10ms   90.00%
  Latency Distribution
     50%  780.00us
     99%    1.90ms
  96000 requests in 8.00s, 14.00MB read
Requests/sec:  12000.00
GATEHOUSE-WRK requests=96000 duration_us=8000000 bytes=14680064 p50_us=780 p90_us=1100 \
p99_us=1900 p999_us=4200 max_us=9100 connect=0 read=2 write=0 status=5 timeout=1
"""


def test_parses_the_report_line() -> None:
    result = parse_wrk_output(WRK_OUTPUT)
    assert result.requests == 96000
    assert result.rps == pytest.approx(12000.0)
    assert result.p50_ms == pytest.approx(0.78)
    assert result.p99_ms == pytest.approx(1.9)
    assert result.p999_ms == pytest.approx(4.2)
    assert result.max_ms == pytest.approx(9.1)
    assert result.socket_errors == 3
    assert result.status_errors == 5
    assert result.errors == 8
    assert result.describe_errors() == "8 (read 2, timeout 1, status 5)"


def test_output_without_the_report_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="no report line"):
        parse_wrk_output(WRK_OUTPUT.split("GATEHOUSE-WRK")[0])


def test_a_truncated_report_line_names_what_is_missing() -> None:
    with pytest.raises(WrkError, match="p999_us"):
        parse_wrk_output("GATEHOUSE-WRK requests=1 duration_us=1000000 p50_us=1")


def test_zero_duration_gives_zero_rate_not_a_crash() -> None:
    line = WRK_OUTPUT.splitlines()[-1].replace("duration_us=8000000", "duration_us=0")
    assert parse_wrk_output(line).rps == 0.0


def test_command_has_latency_script_and_headers() -> None:
    command = wrk_command(
        "http://127.0.0.1:1/",
        threads=1,
        connections=50,
        duration_s=8,
        headers={"Host": "bench.test", "Authorization": "Bearer x"},
    )
    assert command[:4] == ["wrk", "-t1", "-c50", "-d8s"]
    assert "--latency" in command
    assert command[command.index("-s") + 1] == str(REPORT_SCRIPT)
    assert command[command.index("-H") : command.index("-H") + 2] == ["-H", "Host: bench.test"]
    assert command[-1] == "http://127.0.0.1:1/"


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tiny_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_report_script_runs_in_wrk(tiny_server: str) -> None:
    """wrk loads the script, and done() prints the line the parser reads."""
    done = subprocess.run(
        ["wrk", "-t1", "-c2", "-d1s", "-s", str(REPORT_SCRIPT), tiny_server],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = parse_wrk_output(done.stdout)
    assert result.requests > 0
    assert result.errors == 0
    assert 0 < result.p50_ms <= result.p99_ms <= result.p999_ms <= result.max_ms
