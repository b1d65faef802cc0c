"""Real auth, accounts-ui and gateway processes on free ports, over a PostgreSQL database.

Started once per test session and shared by the HTTP and browser tests, which
only read the accounts and sign in and out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from accounts_ui.stack import SEEDED, Stack, seed, ui_auth_process, ui_gateway_process, ui_process
from support.databases import temporary_database
from support.processes import ServiceProcess, free_port, started_together


@dataclass
class ActionStack:
    """Auth and the page over a database of their own, for tests that change accounts."""

    auth: ServiceProcess
    ui: ServiceProcess
    keys_dir: Path


@pytest.fixture(scope="module")
def action_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActionStack]:
    """Separate from ``stack``, whose account count other tests rely on. Auth's reset
    links point straight at this page (``public_url``)."""
    work = tmp_path_factory.mktemp("accounts-ui-actions")
    auth_port = free_port()
    with temporary_database("accounts_ui_actions") as database_url:
        ui = ui_process(f"http://127.0.0.1:{auth_port}", "accounts-ui-actions")
        auth = ui_auth_process(
            database_url,
            work,
            port=auth_port,
            public_url=ui.url,
            # low, so a test can lock an account out and lift it
            rate_limit_per_email_client="5",
        )
        with started_together(auth, ui):
            yield ActionStack(auth=auth, ui=ui, keys_dir=work / "keys")


@pytest.fixture(scope="module")
def totp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ActionStack]:
    """Auth requiring a second factor of admins (``require_admin_totp``), and the page.

    Its own database: the admin here enrols and signs in with codes.
    """
    work = tmp_path_factory.mktemp("accounts-ui-totp")
    auth_port = free_port()
    with temporary_database("accounts_ui_totp") as database_url:
        ui = ui_process(f"http://127.0.0.1:{auth_port}", "accounts-ui-totp")
        auth = ui_auth_process(database_url, work, port=auth_port, require_admin_totp="true")
        with started_together(auth, ui):
            yield ActionStack(auth=auth, ui=ui, keys_dir=work / "keys")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("accounts-ui")
    keys_dir = work / "keys"
    spare_port = free_port()
    with temporary_database("accounts_ui") as database_url:
        auth = ui_auth_process(database_url, work)
        ui = ui_process(auth.url)
        gateway = ui_gateway_process(work, auth.url, ui.url)
        ui_spare = ui_process(f"http://127.0.0.1:{spare_port}", "accounts-ui-spare", 1.0)
        with started_together(auth, ui, gateway, ui_spare):
            seeded = seed(auth.url, database_url)
            yield Stack(
                auth=auth,
                ui=ui,
                gateway=gateway,
                ui_spare=ui_spare,
                spare_port=spare_port,
                keys_dir=keys_dir,
                total=SEEDED + 3,  # admin + viewer + seeds + the hostile row
                seeded=seeded,
            )
