"""gatehouse-populate against the real service: creates, skips on a second run, writes a CSV."""

from __future__ import annotations

import csv
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from support.auth import AuthService, StartAuth
from support.processes import REPO_ROOT, free_port

from gatehouse_auth.populate import main


def populate(*args: str, progress: bool = False) -> subprocess.CompletedProcess[str]:
    flags = [] if progress else ["--no-progress"]
    return subprocess.run(
        [sys.executable, "-m", "gatehouse_auth.populate", *flags, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_populate_creates_then_skips_and_writes_credentials(
    auth_service: AuthService, tmp_path: Path
) -> None:
    prefix = f"pop{uuid.uuid4().hex[:6]}_"
    common = ["--count", "20", "--auth-url", auth_service.url, "--prefix", prefix]
    credentials = tmp_path / "out" / "credentials.csv"
    first = populate(*common, "--concurrency", "8", "--csv", str(credentials), progress=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "created=20 skipped=0 failed=0"
    assert "20/20" in first.stderr  # tqdm's progress bar, on stderr
    second = populate(*common, "--concurrency", "4")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "created=0 skipped=20 failed=0"

    with credentials.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20
    assert rows[0]["username"] == f"{prefix}000001"
    assert rows[-1]["email"] == f"{prefix}000020@example.com"
    with httpx.Client(base_url=auth_service.url) as client:
        for row in (rows[0], rows[-1]):
            login = client.post("/login", json={"email": row["email"], "password": row["password"]})
            assert login.status_code == 200


def test_populate_reports_failures_and_exits_non_zero(capsys: pytest.CaptureFixture) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as exited:
        main(["--count", "2", "--auth-url", dead, "--retries", "1", "--no-progress"])
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out.strip() == "created=0 skipped=0 failed=2"
    assert "ConnectError" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "-1"], "--count"),
        (["--password", "short"], "72 bytes"),
        (["--password", "p" * 73], "72 bytes"),
        (["--concurrency", "0"], "--concurrency"),
    ],
)
def test_populate_refuses_bad_arguments(args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert message in str(exited.value.code)


def test_populate_says_how_to_lift_the_sign_up_limit(
    start_auth: StartAuth, capsys: pytest.CaptureFixture
) -> None:
    service = start_auth(signup_rate_limit_per_client="2", signup_rate_limit_window_seconds="600")
    with pytest.raises(SystemExit) as exited:
        prefix = f"lim{uuid.uuid4().hex[:6]}_"
        main(
            [
                "--count",
                "3",
                "--auth-url",
                service.url,
                "--retries",
                "0",
                "--no-progress",
                "--prefix",
                prefix,
                "--concurrency",
                "1",
            ]
        )
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out.strip() == "created=2 skipped=0 failed=1"
    assert "GATEHOUSE_AUTH_SIGNUP_RATE_LIMIT_PER_CLIENT=0" in err
