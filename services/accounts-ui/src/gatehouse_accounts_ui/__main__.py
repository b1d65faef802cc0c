"""``gatehouse-accounts-ui``: serve the accounts page (flags > environment > defaults)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gatehouse_accounts_ui.settings import AccountsUISettings
from gatehouse_common.cli import service_parser, settings_from_args
from gatehouse_common.server import serve

_FLAG_FIELDS = ("host", "port", "workers", "log_level", "auth_url")
_SECRET_ENV = "GATEHOUSE_ACCOUNTS_UI_CSRF_SECRET"


def build_parser() -> argparse.ArgumentParser:
    parser = service_parser("Serve the Gatehouse accounts page.")
    parser.add_argument("--auth-url", help="base URL of the auth service (default from env)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(AccountsUISettings, args, _FLAG_FIELDS)
    except ValidationError as exc:
        sys.exit(f"gatehouse-accounts-ui: invalid settings:\n{exc}")
    if settings.secret_generated and settings.csrf_secret is not None:
        # Development: one secret for this process and the workers it starts,
        # so a form rendered by one worker is accepted by another.
        os.environ[_SECRET_ENV] = settings.csrf_secret.get_secret_value()
    serve("gatehouse_accounts_ui.app:create_app", settings)


if __name__ == "__main__":
    main()
