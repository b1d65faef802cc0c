"""Real auth and accounts-ui processes on free ports, over a PostgreSQL database of our own.

Started once per test session (each start costs a second or two) and shared by
the HTTP and browser tests, which only read the accounts and sign in and out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from accounts_ui.stack import SEEDED, Stack, auth_process, seed, ui_process
from support.databases import temporary_database
from support.processes import ServiceProcess, free_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    keys_dir = tmp_path_factory.mktemp("accounts-ui-auth") / "keys"
    with (
        temporary_database("accounts_ui") as database_url,
        auth_process(database_url, keys_dir) as auth,
    ):
        seeded = seed(auth.url, database_url)
        with ui_process(auth.url) as ui:
            # admin + viewer + seeds + the hostile row
            yield Stack(auth=auth, ui=ui, total=SEEDED + 3, seeded=seeded)


@pytest.fixture(scope="session")
def ui_without_auth() -> Iterator[ServiceProcess]:
    """An accounts page whose auth service is a port nothing listens on."""
    with ui_process(f"http://127.0.0.1:{free_port()}", name="accounts-ui-no-auth") as ui:
        yield ui
