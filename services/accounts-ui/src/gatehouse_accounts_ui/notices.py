"""The one-line notices a page shows after a redirect (``?notice=<code>``).

Only codes from this table are shown, as fixed text: the address bar cannot
make the page say anything else.
"""

from __future__ import annotations

from starlette.requests import Request

NOTICES = {
    "signed_out": "You have signed out.",
    "disabled": "The account is disabled: it cannot sign in and its sessions have ended.",
    "enabled": "The account is enabled again.",
    "role_changed": "The role is changed; the account's old tokens no longer work.",
    "signed_out_everywhere": "The account is signed out everywhere.",
    "lockout_lifted": "The sign-in lockout is lifted.",
    "no_lockout": "That account had no sign-in lockout in force.",
    "password_changed": "Your password is changed; your other sessions have ended.",
    "password_reset": "Your new password is set. Sign in with it.",
    "totp_disabled": "Two-factor sign-in is off: signing in takes only your password now.",
}


def notice_of(request: Request) -> str:
    return NOTICES.get(request.query_params.get("notice", ""), "")
