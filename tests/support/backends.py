"""The fake backend (``gatehouse_fake_backend``) as a process on a free port."""

from __future__ import annotations

from support.processes import ServiceProcess, free_port, python_module


def fake_backend(
    name: str | None = None, *args: str, port: int | None = None, faults: bool = True
) -> ServiceProcess:
    """A fake backend, not started yet.

    ``faults`` (the default) opens the ``/__backend/`` endpoints tests switch
    faults with at run time; without it the backend starts as in production.
    """
    port = port or free_port()
    extra = ["--name", name] if name else []
    if faults:
        extra.append("--faults")
    return ServiceProcess(
        name=name or f"fake-backend-{port}",
        command=python_module("gatehouse_fake_backend", "--port", str(port), *extra, *args),
        port=port,
        # /readyz for a backend started --unhealthy: it is up all the same
        ready_path="/readyz" if "--unhealthy" in args else "/healthz",
    )
