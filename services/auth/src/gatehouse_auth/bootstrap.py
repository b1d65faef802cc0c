"""Start-up work: the admin account named by the environment.

``GATEHOUSE_ADMIN_EMAIL`` (default admin@example.com) with
``GATEHOUSE_ADMIN_PASSWORD`` is created, or promoted to admin and given that
password. In development, with no password set, one is generated once, kept in
``<data_dir>/admin-password`` (mode 0600) so it survives restarts, and logged
at every start so the demo can show it. In production no password means no
admin is touched: a real one is made with ``gatehouse-auth create-admin``.
"""

from __future__ import annotations

import logging
import os
import secrets

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from gatehouse_auth import crud
from gatehouse_auth.errors import AccountExists
from gatehouse_auth.models import Account
from gatehouse_auth.password_policy import WeakPassword, check_password_strength
from gatehouse_auth.passwords import PasswordHasher, generate_password
from gatehouse_auth.settings import AuthSettings

logger = logging.getLogger(__name__)
ADMIN_PASSWORD_FILE = "admin-password"


def _development_password(settings: AuthSettings) -> str:
    path = settings.data_dir / ADMIN_PASSWORD_FILE
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    password = generate_password()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker got there first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def ensure_admin_in(
    engine: Engine, *, email: str, password: str, username: str, hasher: PasswordHasher
) -> tuple[Account, bool]:
    """:func:`crud.ensure_admin` in a session of its own; (account, created)."""
    with Session(engine) as session:
        return crud.ensure_admin(
            session=session, email=email, password=password, username=username, hasher=hasher
        )


def ensure_admin_account(engine: Engine, settings: AuthSettings, hasher: PasswordHasher) -> bool:
    """Create or update the configured admin; False when nothing was done on purpose."""
    generated = settings.admin_password is None
    if generated and settings.is_production:
        logger.warning("GATEHOUSE_ADMIN_PASSWORD is not set: no admin account ensured at start")
        return False
    password = (
        _development_password(settings)
        if settings.admin_password is None
        else settings.admin_password.get_secret_value()
    )
    username = settings.admin_username
    try:
        # The admin's password passes the rules every sign-up does.
        check_password_strength(
            password,
            email=settings.admin_email,
            username=username,
            min_score=settings.password_min_score,
        )
    except WeakPassword as exc:
        logger.error("GATEHOUSE_ADMIN_PASSWORD is refused, no admin ensured: %s", exc.message)
        return False
    for _attempt in range(3):
        try:
            account, created = ensure_admin_in(
                engine,
                email=settings.admin_email,
                password=password,
                username=username,
                hasher=hasher,
            )
            break
        except AccountExists as exc:
            # A concurrent worker created it (retry finds it), or the username
            # belongs to someone else (retry under a suffixed one).
            if exc.code == "username_taken":
                username = f"{settings.admin_username}-{secrets.token_hex(3)}"
        except ValidationError as exc:
            logger.error("the admin from GATEHOUSE_ADMIN_EMAIL/PASSWORD is not valid: %s", exc)
            return False
    else:
        logger.error("could not ensure the admin account %s", settings.admin_email)
        return False
    logger.info(
        "admin account %s %s (id %s)",
        account.email,
        "created" if created else "ensured",
        account.id,
    )
    if generated:
        logger.warning(
            "development admin login: email=%s password=%s "
            "(generated, kept in %s; set GATEHOUSE_ADMIN_PASSWORD to choose one)",
            account.email,
            password,
            settings.data_dir / ADMIN_PASSWORD_FILE,
        )
    return True
