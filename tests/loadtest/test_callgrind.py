"""The callgrind harness's own parts: the keep-alive client and the dump's total."""

import socket
from pathlib import Path

import pytest
from gatehouse_loadtest.callgrind import dump_total, read_response, request_bytes


def test_responses_are_read_one_at_a_time_from_a_stream() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        one = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"
        # two responses in one segment, the second's body split from its head
        theirs.sendall(one + one[:-2])
        rest = read_response(ours, b"")
        assert rest == one[:-2]
        theirs.sendall(one[-2:])
        assert read_response(ours, rest) == b""


def test_a_refusal_stops_the_count() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
        with pytest.raises(RuntimeError, match="401"):
            read_response(ours, b"")


def test_request_carries_the_token_when_given() -> None:
    assert b"Authorization: Bearer abc\r\n" in request_bytes("abc")
    assert b"Authorization" not in request_bytes(None)
    assert request_bytes(None).endswith(b"\r\n\r\n")


def test_dump_total(tmp_path: Path) -> None:
    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\nevents: Ir\nfn=main\n1 5\n\ntotals: 709516118\n")
    assert dump_total(dump) == 709516118
