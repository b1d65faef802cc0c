"""``gatehouse-fake-backend``: one instance, or N of them with ``--ports 9001-9004``.

Several instances run as one child process each, so one can be killed (``kill
-9``) without the others noticing, as a real backend would die. The parent
forwards SIGINT/SIGTERM to every child and exits when they have.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from gatehouse_common.cli import service_parser, settings_from_args
from gatehouse_common.server import serve
from gatehouse_fake_backend.settings import FakeBackendSettings

_FLAG_FIELDS = ("host", "port", "log_level", "latency_ms", "error_rate", "error_status")


def parse_ports(spec: str) -> list[int]:
    """``9001-9004`` or ``9001,9003`` (or both, comma-separated) to a list of ports."""
    ports: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        first, _, last = part.partition("-")
        start, end = int(first), int(last or first)
        if not (0 < start <= end <= 65535) or end - start > 255:
            raise argparse.ArgumentTypeError(f"bad port range {part!r}")
        ports.extend(range(start, end + 1))
    if not ports:
        raise argparse.ArgumentTypeError("no ports given")
    return ports


def build_parser() -> argparse.ArgumentParser:
    parser = service_parser("Run fake backends that echo every request.", workers=False)
    parser.add_argument(
        "--ports", type=parse_ports, help="start one instance per port, e.g. 9001-9004"
    )
    parser.add_argument(
        "--name", dest="instance_name", help="instance name (default backend-<port>)"
    )
    parser.add_argument("--latency-ms", type=float, help="delay every echo by this many ms")
    parser.add_argument("--error-rate", type=float, help="share of echoes that fail, 0..1")
    parser.add_argument("--error-status", type=int, help="status of a failed echo (default 503)")
    parser.add_argument("--unhealthy", action="store_true", help="start with /healthz failing")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="serve /__backend/ (change faults at run time, downloads); off: 404",
    )
    return parser


def _child_command(argv: Sequence[str], port: int) -> list[str]:
    """This command line for one port: --ports dropped, --port set."""
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--ports":
            skip = True
            continue
        if arg.startswith("--ports="):
            continue
        args.append(arg)
    return [sys.executable, "-m", "gatehouse_fake_backend", *args, "--port", str(port)]


def _run_many(argv: Sequence[str], ports: list[int]) -> int:
    children = [subprocess.Popen(_child_command(argv, port)) for port in ports]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    # uvicorn re-raises the signal it shut down on, so a child stopped by
    # SIGINT/SIGTERM reports -2/-15: a clean stop, not a failure.
    clean = {0, -signal.SIGINT, -signal.SIGTERM}
    failed = [code for code in (child.wait() for child in children) if code not in clean]
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.ports and len(args.ports) > 1:
        sys.exit(_run_many(argv, args.ports))
    if args.ports:
        args.port = args.ports[0]
    if args.unhealthy:
        os.environ["GATEHOUSE_FAKE_BACKEND_HEALTHY"] = "false"
    if args.faults:
        os.environ["GATEHOUSE_FAKE_BACKEND_FAULTS"] = "true"
    if args.instance_name:
        os.environ["GATEHOUSE_FAKE_BACKEND_INSTANCE_NAME"] = args.instance_name
    settings = settings_from_args(FakeBackendSettings, args, _FLAG_FIELDS)
    serve("gatehouse_fake_backend.app:create_app", settings, fast=True, websocket=True)


if __name__ == "__main__":
    main()
