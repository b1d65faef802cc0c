"""Request ids: taken from ``X-Request-ID`` when the caller sent a sane one, made otherwise.

The id lives in a context variable so every log line written while serving the
request carries it (see :mod:`gatehouse_common.logs`) without threading it
through call signatures.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)

# A client-sent id is echoed into our logs and to backends, so accept only a
# bounded, printable token; anything else is replaced rather than trusted.
_ACCEPTABLE_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def new_request_id() -> str:
    """A fresh, unguessable id (32 hex characters).

    128 random bits, as uuid4 has (less its six fixed bits), at a quarter of
    uuid4's cost: the gateway makes one per proxied request.
    """
    return os.urandom(16).hex()


def accept_request_id(raw: bytes | None) -> str:
    """The client's id if it is acceptable, otherwise a fresh one."""
    if raw is not None and _ACCEPTABLE_ID.match(raw):
        return raw.decode("ascii")
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return request_id_var.get()
