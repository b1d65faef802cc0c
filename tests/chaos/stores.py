"""A PostgreSQL cluster of the chaos suite's own, on a free port (its Redis is
:class:`support.redis_server.RedisServer`).

The machine's shared servers (5432, 6379) serve every other test and engineer,
so an outage is never injected there: the suite runs its own, and stops,
kills or freezes those. PostgreSQL refuses to run as root, so as root the
cluster's commands run as the ``postgres`` user in a folder it owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from support.processes import free_port


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps it off PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb) found")
    return Path(found).parent


@dataclass
class OwnPostgres:
    """A throwaway cluster: ``init()`` once, then ``start()``/``stop()`` at will."""

    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gatehouse-chaos-pg-")))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 60.0) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*as_postgres, str(postgres_bin() / command[0]), *command[1:]],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def init(self) -> OwnPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync")  # fmt: skip
        return self

    def start(self) -> OwnPostgres:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "30", "start")  # fmt: skip
        return self

    def stop(self, mode: str = "immediate") -> None:
        """``immediate`` drops every connection at once, as a crashed server would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        try:
            psycopg2.connect(self.dsn, connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def query(self, statement: str, *args: object) -> list[tuple[object, ...]]:
        with contextlib.closing(psycopg2.connect(self.dsn, connect_timeout=5)) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(statement, args)
                return list(cursor.fetchall()) if cursor.description else []

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
