"""Real auth and accounts-ui processes on free ports, over a PostgreSQL database of our own.

Started once per test session and shared by the HTTP and browser tests, which
only read the accounts and sign in and out. The three processes start side by
side (an accounts page needs no auth service to come up), which on a busy
two-core machine halves the wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from accounts_ui.stack import SEEDED, Stack, auth_process, seed, ui_process
from support.databases import temporary_database
from support.processes import ServiceProcess, free_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys_dir = tmp_path_factory.mktemp("accounts-ui-auth") / "keys"
    with temporary_database("accounts_ui") as database_url:
        auth = auth_process(database_url, keys_dir)
        ui = ui_process(auth.url)
        # an accounts page whose auth service is a port nothing listens on
        ui_no_auth = ui_process(f"http://127.0.0.1:{free_port()}", name="accounts-ui-no-auth")
        processes = (auth, ui, ui_no_auth)
        try:
            with ThreadPoolExecutor(len(processes)) as pool:
                for started in [pool.submit(p.start) for p in processes]:
                    started.result()
            seeded = seed(auth.url, database_url)
            # admin + viewer + seeds + the hostile row
            yield Stack(
                auth=auth,
                ui=ui,
                ui_no_auth=ui_no_auth,
                keys_dir=keys_dir,
                total=SEEDED + 3,
                seeded=seeded,
            )
        finally:
            for process in processes:
                process.stop()


@pytest.fixture(scope="session")
def ui_without_auth(stack: Stack) -> ServiceProcess:
    return stack.ui_no_auth
