"""httpbin, the third-party HTTP test application, as a process on a free port.

It runs under gunicorn's threaded worker, as a real deployment would serve a
WSGI app: keep-alive, ``Expect: 100-continue`` and HTTP/1.0 are gunicorn's own
handling, not a test double's.
"""

from __future__ import annotations

from support.processes import ServiceProcess, free_port, python_module


def httpbin_process(port: int | None = None) -> ServiceProcess:
    """httpbin under gunicorn (one worker, eight threads), not started yet."""
    port = port or free_port()
    return ServiceProcess(
        name="httpbin",
        command=python_module(
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "8",
            "--keep-alive",
            "5",
            "httpbin:app",
        ),
        port=port,
        ready_path="/status/200",
    )
