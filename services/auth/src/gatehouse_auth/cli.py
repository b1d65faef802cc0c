"""``gatehouse-auth``: serve (the default), migrate, create-admin, keys.

    gatehouse-auth [serve] [--host H] [--port P] [--workers N] [--migrate]
    gatehouse-auth migrate
    gatehouse-auth create-admin --email E --password P [--username U]
    gatehouse-auth keys list
    gatehouse-auth keys rotate

Flags beat the environment (``GATEHOUSE_AUTH_*``, ``DATABASE_URL``, ...),
which beats the defaults. The password of create-admin may come from
``GATEHOUSE_ADMIN_PASSWORD`` instead of the command line, which keeps it out
of the shell history and the process list.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from gatehouse_auth.bootstrap import ensure_admin_in
from gatehouse_auth.errors import AccountExists
from gatehouse_auth.models import AccountCreate
from gatehouse_auth.password_policy import WeakPassword, check_password_strength
from gatehouse_auth.settings import AuthSettings
from gatehouse_common.cli import service_parser, settings_from_args
from gatehouse_common.logs import configure_logging
from gatehouse_common.server import serve

COMMANDS = ("serve", "migrate", "create-admin", "keys")
logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse-auth",
        description="The Gatehouse auth service: accounts, login, signed JWTs and JWKS.",
        epilog="Without a command, `serve` runs.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{serve,migrate,create-admin,keys}")
    serve_parser = service_parser("Serve the auth API.")
    commands.add_parser(
        "serve", parents=[serve_parser], add_help=False, help="serve the API (default)"
    ).add_argument("--migrate", action="store_true", help="apply migrations before serving")
    commands.add_parser("migrate", help="apply database migrations (run before serving)")
    admin = commands.add_parser("create-admin", help="create an admin, or make an account admin")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password", help="default: $GATEHOUSE_ADMIN_PASSWORD")
    admin.add_argument("--username", help="default: the part of the email before '@'")
    keys = commands.add_parser("keys", help="the signing keys: list them, rotate now")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="{list,rotate}", required=True)
    keys_commands.add_parser("list", help="every key with its stage")
    keys_commands.add_parser(
        "rotate",
        help="add a new key: published at once, signing after "
        "GATEHOUSE_AUTH_KEY_PUBLISH_AHEAD_SECONDS; retired keys tidied",
    )
    return parser


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _audit_rotation(settings: AuthSettings, created: list[str]) -> None:
    """The audit log's ``key_rotated`` rows (logged, not fatal, when the database is away)."""
    if not created:
        return
    from gatehouse_auth.audit import record_key_rotations
    from gatehouse_auth.db import create_db_engine

    engine = create_db_engine(settings)
    try:
        record_key_rotations(engine, created, by="cli")
    finally:
        engine.dispose()


def run_keys(settings: AuthSettings, command: str) -> int:
    """``keys list`` / ``keys rotate``: the running replicas pick the change up by themselves."""
    from gatehouse_auth.keys import KeyRingError
    from gatehouse_auth.rotation import maintain, ring_for

    try:
        first = command == "rotate" and not any(settings.keys_dir.glob("*.pem"))
        ring = ring_for(settings, generate=command == "rotate")
        if command == "rotate":
            # In an empty folder the first key is the rotation.
            done = maintain(ring, settings, force=not first)
            _audit_rotation(settings, done.created)
            if not done.created and not first:
                print("a key is already pending: nothing added (see the list below)")
            for name in done.created:
                print(f"new key {name}: published now, signs from", end=" ")
                stage = next(s for s in ring.stages() if s.key.source == name)
                print(_when(stage.signs_from))
            for name in done.reduced:
                print(f"retired key {name} reduced to its public half")
            for name in done.deleted:
                print(f"retired key {name} removed (its last token has expired)")
    except (KeyRingError, OSError) as exc:
        print(f"keys: {exc}", file=sys.stderr)
        return 1
    now = time.time()
    print(f"{'kid':<44} {'stage':<10} {'signs from':<24} {'published until':<24} file")
    for stage in ring.stages(now):
        print(
            f"{stage.key.kid:<44} {stage.stage:<10} {_when(stage.signs_from):<24} "
            f"{_when(stage.published_until):<24} {stage.key.source}"
        )
    return 0


def run_migrate(settings: AuthSettings) -> int:
    from gatehouse_auth.migrations import current_revision, upgrade

    try:
        upgrade(settings)
        print(f"database at revision {current_revision(settings)}")
    except SQLAlchemyError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    return 0


def run_create_admin(settings: AuthSettings, args: argparse.Namespace) -> int:
    from gatehouse_auth.db import create_db_engine
    from gatehouse_auth.passwords import PasswordHasher

    password = args.password or os.environ.get("GATEHOUSE_ADMIN_PASSWORD")
    if not password:
        print("a password is needed: --password or GATEHOUSE_ADMIN_PASSWORD", file=sys.stderr)
        return 2
    try:
        # Checked before touching the database, with the sign-up rules.
        wanted = AccountCreate(
            username=args.username or args.email.split("@", 1)[0],
            email=args.email,
            password=password,
        )
    except ValidationError as exc:
        print(
            "not a valid account (choose a --username if the email's name has odd characters):",
            file=sys.stderr,
        )
        for error in exc.errors():
            print(f"  {'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    try:
        check_password_strength(
            wanted.password,
            email=wanted.email,
            username=wanted.username,
            min_score=settings.password_min_score,
        )
    except WeakPassword as exc:
        print(f"not a valid account:\n  password: {exc.message}", file=sys.stderr)
        return 2
    engine = create_db_engine(settings)
    try:
        account, created = ensure_admin_in(
            engine,
            email=wanted.email,
            password=wanted.password,
            username=wanted.username,
            hasher=PasswordHasher(settings.bcrypt_rounds),
        )
    except AccountExists as exc:
        print(f"cannot create the admin: {exc.detail}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"database error (run `gatehouse-auth migrate` first?): {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"admin {account.email} (id {account.id}) {'created' if created else 'updated'}")
    return 0


def leave_forwarding_to_the_service() -> None:
    """Turn uvicorn's proxy-headers middleware off, so one setting decides who the client is.

    Left on, uvicorn rewrites the client address from X-Forwarded-For with its
    own trust list (``FORWARDED_ALLOW_IPS``, 127.0.0.1 by default) before the app
    sees the peer; the service would then believe a header that came from a peer
    ``GATEHOUSE_AUTH_TRUSTED_PROXIES`` does not trust, and a client could rotate
    its rate-limit key. :func:`gatehouse_auth.deps.resolve_client` reads the header.
    """
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        print(
            "warning: FORWARDED_ALLOW_IPS is ignored by the auth service; "
            "set GATEHOUSE_AUTH_TRUSTED_PROXIES instead",
            file=sys.stderr,
        )
    os.environ["FORWARDED_ALLOW_IPS"] = ""


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["serve", *argv]
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        settings = settings_from_args(AuthSettings, args)
        if args.migrate:
            os.environ["GATEHOUSE_AUTH_MIGRATE_ON_START"] = "true"
            settings = AuthSettings()
        if settings.workers > 1 and not settings.redis_url:
            print(
                "warning: several workers without REDIS_URL: each keeps its own login rate limit",
                file=sys.stderr,
            )
        leave_forwarding_to_the_service()
        serve("gatehouse_auth.app:create_app", settings)
        return
    settings = AuthSettings()
    configure_logging(settings.service_name, level="warning", json=settings.log_json)
    if args.command == "migrate":
        sys.exit(run_migrate(settings))
    if args.command == "keys":
        sys.exit(run_keys(settings, args.keys_command))
    sys.exit(run_create_admin(settings, args))
