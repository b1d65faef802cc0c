"""Every URL of the page lives under one prefix, so one gateway route covers it all."""

from __future__ import annotations

from urllib.parse import urlencode

PREFIX = "/accounts_page"
STATIC_PREFIX = f"{PREFIX}/static"
LOGIN_PATH = f"{PREFIX}/login"
LOGOUT_PATH = f"{PREFIX}/logout"
AUDIT_PATH = f"{PREFIX}/audit"
PASSWORD_PATH = f"{PREFIX}/password"
# Where auth's reset links point (its password_reset_path setting).
RESET_PATH = f"{PREFIX}/password-reset"
LIFT_LOCKOUT_PATH = f"{PREFIX}/lockouts/lift"
# The signed-in person's own second factor, and its three form posts.
TOTP_PATH = f"{PREFIX}/two-factor"
TOTP_START_PATH = f"{TOTP_PATH}/start"
TOTP_CONFIRM_PATH = f"{TOTP_PATH}/confirm"
TOTP_DISABLE_PATH = f"{TOTP_PATH}/disable"


def action_path(account_id: int | str, action: str) -> str:
    """Where an account row's form posts ``action`` (disable, role, ...)."""
    return f"{PREFIX}/accounts/{account_id}/{action}"


def page_url(path: str = PREFIX, **params: str | int) -> str:
    """``path`` (the accounts page by default) with the given query, empty values left out.

    An absolute path rather than a full URL: it stays right whether the browser
    reached this service directly or through the gateway.
    """
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{path}?{query}" if query else path
