"""``make bench``: direct, nginx and the gateway side by side in one run, plus its memory.

Order of a run: two nginx ``return 200`` backends (and a static JWKS) start,
then nginx as a reverse proxy and one gateway process per setting; every
target gets a warm-up, then interleaved rounds; then a fresh gateway has its
memory measured (100 MB each way, then 1,000 connections for 60 s). The
report goes to ``loadtest/results/<UTC time>.md`` and ``latest.md`` and is
printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import redis

from gatehouse_loadtest import memory
from gatehouse_loadtest.gateway import (
    BENCH_HOST,
    GatewaySetting,
    GatewayUnavailable,
    start_gateway,
)
from gatehouse_loadtest.jwks import BenchKey
from gatehouse_loadtest.nginx import start_nginx
from gatehouse_loadtest.procs import ManagedProcess, free_port, raise_open_files_limit
from gatehouse_loadtest.profile import render_profile, start_py_spy, summarize
from gatehouse_loadtest.report import (
    machine_description,
    memory_checks,
    performance_checks,
    render_report,
)
from gatehouse_loadtest.rounds import LoadShape, Target, measure, run_rounds
from gatehouse_loadtest.servers import BARE_SERVERS, start_bare_server
from gatehouse_loadtest.tls import CertFiles, make_certificates
from gatehouse_loadtest.user_gateway import start_user_gateway

logger = logging.getLogger("gatehouse_loadtest")

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "loadtest" / "results"
REDIS_URL = "redis://127.0.0.1:6379/0"
STREAM_HOST = "stream.gatehouse.test"

# What a rate limit costs when it never refuses: every request still finds
# its subject's lease and spends a token; refills go to Redis in the background.
NEVER_REFUSING_LIMIT = {"name": "per-subject", "key": {"by": "subject"}, "rate": 1_000_000}

# name -> (description, setting). The production setting is what a deployment
# runs: JWT required, round_robin with its cursor in Redis, metrics on (always on).
GATEWAY_SETTINGS: dict[str, tuple[str, GatewaySetting]] = {
    "gateway-plain": (
        "gateway, 1 worker, plain route (no auth, local cursor, no Redis)",
        GatewaySetting(auth=False, cursor="local", redis=False),
    ),
    "gateway-production": (
        "gateway, 1 worker, production (JWT + Redis cursor + metrics)",
        GatewaySetting(auth=True, cursor="redis"),
    ),
    "gateway-production-local": (
        "gateway, 1 worker, production route with a local cursor",
        GatewaySetting(auth=True, cursor="local"),
    ),
    "gateway-production-ratelimited": (
        "gateway, 1 worker, production route with a per-subject rate limit shared"
        " through Redis, set high enough never to refuse",
        GatewaySetting(auth=True, cursor="redis", rate_limits=(NEVER_REFUSING_LIMIT,)),
    ),
    "gateway-2-workers": (
        "gateway, 2 workers, production (JWT + Redis cursor + metrics)",
        GatewaySetting(auth=True, cursor="redis", workers=2),
    ),
}
# The server comparison (--servers): the bare app under each server, and the
# gateway's plain route under granian ASGI beside gateway-plain (uvicorn).
GRANIAN_GATEWAY = "gateway-plain-granian"
SERVER_TARGETS = (*BARE_SERVERS, GRANIAN_GATEWAY)
GRANIAN_GATEWAY_SETTING = GatewaySetting(
    auth=False, cursor="local", redis=False, server="granian-asgi"
)
USER_GATEWAY = "gateway-user"
GATEWAY_TLS = "gateway-tls"
TLS_TARGETS = ("nginx-tls", GATEWAY_TLS)
DEFAULT_TARGETS = ("direct", "nginx", *GATEWAY_SETTINGS, USER_GATEWAY, *TLS_TARGETS)
ALL_TARGETS = (*DEFAULT_TARGETS, *SERVER_TARGETS)
DESCRIPTIONS = {
    "nginx": "nginx, 1 worker, round robin, keepalive upstreams",
    "nginx-tls": "nginx over HTTPS (TLS 1.2+, ECDSA P-256), 1 worker, keep-alive clients",
    USER_GATEWAY: "gateway as a user starts it: `gatehouse-gateway --config`,"
    " original-format config, plain route, every default",
    GRANIAN_GATEWAY: "gateway, 1 worker, plain route, under granian ASGI",
    GATEWAY_TLS: "gateway over HTTPS (its TLS listener, same certificate), 1 worker, plain route",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (default 3; 0: memory runs only)"
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (-t)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (-c)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ALL_TARGETS,
        help="run only these targets (default: all but the server comparison)",
    )
    parser.add_argument(
        "--servers",
        action="store_true",
        help="add the server comparison: a bare 200 app under uvicorn (edge protocol),"
        " granian ASGI and RSGI, and the gateway's plain route under granian ASGI",
    )
    parser.add_argument(
        "--servers-python",
        default=str(REPO_ROOT / ".venv-bench-servers" / "bin" / "python"),
        help="the Python the server comparison runs under: the gateway's dependencies"
        " plus granian (`make bench-servers` syncs it)",
    )
    parser.add_argument(
        "--user-python",
        help="the venv (its python) whose `gatehouse-gateway` script the gateway-user"
        " target runs (default: --gateway-python's)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--memory-seconds", type=float, default=60.0, help="length of the 1,000-connection run"
    )
    parser.add_argument(
        "--profile",
        choices=list(GATEWAY_SETTINGS),
        help="after the rounds, run this target once more under py-spy and summarize",
    )
    parser.add_argument(
        "--memory-setting",
        choices=["plain", "production"],
        default="production",
        help="the gateway the memory runs measure (default production: JWT, Redis cursor,"
        " metrics; plain: no auth, no Redis)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="folder for the report")
    parser.add_argument("--no-save", action="store_true", help="print the report only")
    parser.add_argument(
        "--gateway-python",
        default=sys.executable,
        help="the Python the gateways run under (make bench: a venv with only the gateway's"
        " own dependencies, as its image has; default: this one)",
    )
    return parser


def wanted_targets(args: argparse.Namespace) -> list[str]:
    """``--only``'s targets, else the default ones and, with ``--servers``, the comparison."""
    if args.only:
        return list(args.only)
    return [*DEFAULT_TARGETS, *(SERVER_TARGETS if args.servers else ())]


def gateway_available() -> bool:
    return importlib.util.find_spec("gatehouse_gateway.__main__") is not None


def _gateway_python_note(args: argparse.Namespace) -> str:
    if Path(args.gateway_python).absolute() == Path(sys.executable).absolute():
        return "gateways ran in the development venv (its test tools add to their memory)"
    return (
        "gateways ran in a venv with only the gateway's own dependencies"
        " (`make bench` syncs it), as its image has"
    )


def _require_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if not shutil.which(tool)]
    if missing and not (missing == ["nginx"] and Path("/usr/sbin/nginx").exists()):
        raise SystemExit(f"missing {missing}: run `make system-deps`")


class Bench:
    """The processes of one run, stopped together whatever happens."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack, workdir: Path) -> None:
        self.args = args
        self.stack = stack
        self.workdir = workdir
        self.key = BenchKey.generate()
        self.token = self.key.token()
        self.redis_prefix = f"gatehouse-bench:{uuid.uuid4().hex[:10]}:"
        self.backend_ports = (free_port(), free_port())
        self.jwks_port = free_port()
        self.backends = [f"http://127.0.0.1:{p}" for p in self.backend_ports]
        self.jwks_url = f"http://127.0.0.1:{self.jwks_port}/.well-known/jwks.json"
        self.backend_nginx: ManagedProcess | None = None
        self.notes: list[str] = []
        self.started_gateways: list[ManagedProcess] = []
        self._certs: CertFiles | None = None

    @property
    def certs(self) -> CertFiles:
        """The run's self-signed certificate, made on first use."""
        if self._certs is None:
            self._certs = make_certificates(self.workdir / "tls")
        return self._certs

    def own(self, process: ManagedProcess) -> ManagedProcess:
        self.stack.callback(process.stop)
        return process

    def start_backends(self) -> None:
        values = {
            "BACKEND_A_PORT": self.backend_ports[0],
            "BACKEND_B_PORT": self.backend_ports[1],
            "JWKS_PORT": self.jwks_port,
            "JWKS_JSON": self.key.jwks_json(),
        }
        self.backend_nginx = self.own(
            start_nginx("backends", "backends.conf", values, workdir=self.workdir)
        )
        for url in [*self.backends, self.jwks_url]:
            self.backend_nginx.wait_http(url, timeout_s=10)

    def gateway_env(self, setting: GatewaySetting) -> dict[str, str]:
        return {
            "REDIS_URL": REDIS_URL if setting.redis else "",
            "GATEHOUSE_GATEWAY_REDIS_PREFIX": self.redis_prefix,
            "GATEHOUSE_GATEWAY_ACCESS_LOG": "false",
            "GATEHOUSE_GATEWAY_LOG_LEVEL": "warning",
        }

    def start_gateway(
        self,
        name: str,
        setting: GatewaySetting,
        *,
        wrapper: Sequence[str] = (),
        ready_timeout_s: float = 60.0,
    ) -> tuple[ManagedProcess, str]:
        """One gateway of the run (stopped with it); ``wrapper`` as :func:`start_gateway`'s."""
        granian = setting.server != "uvicorn"
        process, url = start_gateway(
            name,
            setting,
            workdir=self.workdir,
            backends=self.backends,
            jwks_url=self.jwks_url,
            env=self.gateway_env(setting),
            repo_root=REPO_ROOT,
            python=self.args.servers_python if granian else self.args.gateway_python,
            wrapper=wrapper,
            ready_timeout_s=ready_timeout_s,
        )
        self.own(process)
        self.started_gateways.append(process)
        return process, url

    def targets(self, wanted: Sequence[str]) -> list[Target]:
        if self.backend_nginx is None:
            raise RuntimeError("backends first")
        targets = []
        for name in wanted:
            target = self.target(name)
            if target is not None:
                targets.append(target)
        return targets

    def target(self, name: str) -> Target | None:
        """Start what ``name`` needs; its Target, or None (and a note) when it cannot run."""
        if self.backend_nginx is None:
            raise RuntimeError("backends first")
        if name == "direct":
            return Target(
                "direct",
                "direct to one nginx backend (no proxy)",
                self.backends[0] + "/",
                cpu_pids=[self.backend_nginx.pid],
            )
        if name in ("nginx", "nginx-tls"):
            return self.nginx_target(name)
        if name in BARE_SERVERS:
            if not Path(self.args.servers_python).exists():
                self.notes.append(f"{name}: skipped, no {self.args.servers_python}")
                return None
            port = free_port()
            process = self.own(
                start_bare_server(
                    name, python=self.args.servers_python, port=port, workdir=self.workdir
                )
            )
            url = f"http://127.0.0.1:{port}/"
            return Target(name, BARE_SERVERS[name].description, url, cpu_pids=[process.pid])
        if not gateway_available():
            self.notes.append(f"{name}: skipped, the gateway package has no entry point yet")
            return None
        headers = {"Host": BENCH_HOST}
        if name == USER_GATEWAY:
            process, url = start_user_gateway(
                name,
                python=self.args.user_python or self.args.gateway_python,
                workdir=self.workdir,
                backends=self.backends,
            )
            self.own(process)
            self.started_gateways.append(process)
            return Target(name, DESCRIPTIONS[name], url + "/", headers, [process.pid])
        if name == GRANIAN_GATEWAY:
            if not Path(self.args.servers_python).exists():
                self.notes.append(f"{name}: skipped, no {self.args.servers_python}")
                return None
            description, setting = DESCRIPTIONS[name], GRANIAN_GATEWAY_SETTING
        elif name == GATEWAY_TLS:
            description = DESCRIPTIONS[name]
            setting = GatewaySetting(auth=False, cursor="local", redis=False, tls=self.certs)
        else:
            description, setting = GATEWAY_SETTINGS[name]
        try:
            process, url = self.start_gateway(name, setting)
        except GatewayUnavailable as exc:
            self.notes.append(
                f"{name}: unavailable, not measured: the gateway refused its config ({exc})"
            )
            return None
        if setting.auth:
            headers["Authorization"] = f"Bearer {self.token}"
        ca_file = setting.tls.ca if setting.tls is not None else None
        return Target(name, description, url + "/", headers, [process.pid], ca_file=ca_file)

    def nginx_target(self, name: str) -> Target:
        port = free_port()
        values: dict[str, object] = {
            "BACKEND_A_PORT": self.backend_ports[0],
            "BACKEND_B_PORT": self.backend_ports[1],
            "PROXY_PORT": port,
        }
        tls = name == "nginx-tls"
        if tls:
            values |= {"TLS_CERT": self.certs.cert, "TLS_KEY": self.certs.key}
        template = "proxy-tls.conf" if tls else "proxy.conf"
        proxy = self.own(start_nginx(name, template, values, workdir=self.workdir))
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/"
        ca_file = self.certs.ca if tls else None
        proxy.wait_http(url, timeout_s=10, ca_file=ca_file)
        return Target(name, DESCRIPTIONS[name], url, cpu_pids=[proxy.pid], ca_file=ca_file)

    def memory_runs(
        self,
    ) -> tuple[memory.ConnectionsFigure | None, list[memory.StreamFigure]]:
        if not gateway_available():
            self.notes.append("memory: skipped, the gateway package has no entry point yet")
            return None, []
        fake_port = free_port()
        fake = self.own(
            ManagedProcess(
                "fake-backend",
                # --faults: the memory runs download from /__backend/bytes/{n}.
                [
                    sys.executable,
                    "-m",
                    "gatehouse_fake_backend",
                    "--port",
                    str(fake_port),
                    "--faults",
                ],
                log_path=self.workdir / "fake-backend.log",
                env={"GATEHOUSE_FAKE_BACKEND_LOG_LEVEL": "warning"},
                cwd=REPO_ROOT,
            ).start()
        )
        fake.wait_http(f"http://127.0.0.1:{fake_port}/healthz")
        stream_route = {
            "name": "stream",
            "hosts": [STREAM_HOST],
            "path_prefix": "/",
            "auth": "none",
            "strategy": "round_robin",
            "backends": [{"url": f"http://127.0.0.1:{fake_port}"}],
            "timeouts": {"connect": 5, "read": 120},
        }
        production = self.args.memory_setting == "production"
        setting = GatewaySetting(
            auth=production,
            cursor="redis" if production else "local",
            redis=production,
            extra_routes=(stream_route,),
        )
        process, url = self.start_gateway("gateway-memory", setting)
        logger.info("memory: streaming 100 MiB each way through the gateway")
        streams = [
            memory.stream_download(process.pid, url, STREAM_HOST),
            memory.stream_upload(process.pid, url, STREAM_HOST),
        ]
        logger.info(
            "memory: 1,000 connections for %.0f s (wrk -t2 -c1000)", self.args.memory_seconds
        )
        headers = {"Host": BENCH_HOST}
        if production:
            headers["Authorization"] = f"Bearer {self.token}"
        connections = memory.many_connections(
            process.pid, url + "/", headers, duration_s=self.args.memory_seconds
        )
        return dataclasses.replace(connections, setting=self.args.memory_setting), streams

    def forget_redis_keys(self) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{self.redis_prefix}*", count=500))
            if keys:
                client.delete(*keys)
        except redis.RedisError as exc:
            logger.warning("could not remove the bench's Redis keys: %s", exc)
        finally:
            client.close()


def profile_target(targets: Sequence[Target], name: str, shape: LoadShape, output: Path) -> None:
    """One more wrk run of ``name`` with py-spy attached; the summary is printed and saved."""
    target = next((t for t in targets if t.name == name), None)
    if target is None or not target.cpu_pids:
        logger.warning("no running target %s to profile", name)
        return
    output.mkdir(parents=True, exist_ok=True)
    raw = output / f"profile-{name}.folded"
    spy = start_py_spy(target.cpu_pids[0], shape.duration_s, raw)
    sample = measure(target, shape)
    _, errors = spy.communicate(timeout=shape.duration_s + 60)
    if spy.returncode != 0 or not raw.exists():
        logger.warning("py-spy failed: %s", errors.decode(errors="replace")[-500:])
        return
    title = (
        f"py-spy profile of {name} under wrk -t{shape.threads} -c{shape.connections}"
        f" ({sample.result.rps:,.0f} req/s while sampled)"
    )
    text = render_profile(summarize(raw.read_text()), title)
    (output / f"profile-{name}.txt").write_text(text)
    print(text)


def run(args: argparse.Namespace) -> str:
    _require_tools()
    limit = raise_open_files_limit()
    shape = LoadShape(
        threads=args.threads,
        connections=args.connections,
        duration_s=args.duration,
        warmup_s=args.warmup,
    )
    wanted = wanted_targets(args)
    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    with ExitStack() as stack:
        bench = Bench(args, stack, workdir)
        stack.callback(bench.forget_redis_keys)
        bench.start_backends()
        targets = bench.targets(wanted) if args.rounds > 0 else []
        summaries = []
        if targets:
            logger.info("measuring %s", ", ".join(t.name for t in targets))
            summaries = run_rounds(targets, shape, args.rounds)
        if args.profile:
            profile_target(targets, args.profile, shape, args.output)
        for process in bench.started_gateways:
            process.stop()  # idle gateways out of the memory runs' way
        connections, streams = (None, []) if args.no_memory else bench.memory_runs()
        notes = [*bench.notes, f"open-file limit {limit}", _gateway_python_note(args)]
    # kept only when the run failed, for the processes' logs
    shutil.rmtree(workdir, ignore_errors=True)
    checks = [*performance_checks(summaries), *memory_checks(connections, streams)]
    when = datetime.now(UTC)
    report = render_report(
        title=f"Gatehouse benchmark, {when:%Y-%m-%d %H:%M} UTC",
        machine=machine_description(REPO_ROOT),
        shape=shape,
        rounds=args.rounds,
        summaries=summaries,
        checks=checks,
        connections=connections,
        notes=notes,
    )
    if not args.no_save:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / f"{when:%Y-%m-%dT%H%MZ}.md").write_text(report)
        (args.output / "latest.md").write_text(report)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    print(run(args))


if __name__ == "__main__":
    main()
