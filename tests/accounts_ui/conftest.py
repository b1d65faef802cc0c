"""Real auth, accounts-ui and gateway processes on free ports, over a PostgreSQL database.

Started once per test session and shared by the HTTP and browser tests, which
only read the accounts and sign in and out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from accounts_ui.stack import SEEDED, Stack, seed, ui_auth_process, ui_gateway_process, ui_process
from support.databases import temporary_database
from support.processes import free_port, started_together


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
