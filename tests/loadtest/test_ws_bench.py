"""make bench-ws's options: the idle count is bounded, the open-files limit caps it,
and several gateway interpreters are only for the idle-only mode."""

import pytest
from gatehouse_loadtest.websocket import MAX_IDLE, build_parser, idle_capacity


def test_idle_capacity_is_two_descriptors_per_socket_after_the_spares() -> None:
    assert idle_capacity(20_000) == 9_950
    assert idle_capacity(1_024) == 462
    assert idle_capacity(50) == 0


@pytest.mark.parametrize("bad", ["-1", str(MAX_IDLE + 1), "many", "1e4"])
def test_an_idle_count_out_of_bounds_or_not_a_number_is_refused(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--idle", bad])
    assert "--idle" in capsys.readouterr().err


def test_idle_only_takes_several_gateway_interpreters() -> None:
    args = build_parser().parse_args(
        ["--idle-only", "--idle", "100", "--gateway-python", "a", "--gateway-python", "b"]
    )
    assert (args.idle_only, args.idle, args.gateway_python) == (True, 100, ["a", "b"])
    assert build_parser().parse_args([]).gateway_python is None
