"""The service's periodic work, one task each, started by the lifespan and cancelled at shutdown.

* keys: reread the keys folder, rotate when due, tidy retired keys
  (:func:`gatehouse_auth.rotation.maintain`), every ``keys_check_seconds``;
* revocations Redis refused, written again every ``revocation_retry_seconds``;
* finished sessions deleted hourly.

Every replica runs all three: rotation takes a file lock, the rest is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from gatehouse_auth import audit, sessions
from gatehouse_auth.deps import AuthState
from gatehouse_auth.rotation import maintain, retention_seconds
from gatehouse_common.redis_loop import RedisLoop

logger = logging.getLogger(__name__)
# Finished sessions are deleted this often (by every replica: the DELETE is idempotent).
SESSION_PURGE_SECONDS = 3600.0


def start_background_work(state: AuthState) -> list[asyncio.Task[None]]:
    """The periodic tasks, running; the caller cancels them."""
    return [
        asyncio.create_task(_maintain_keys(state)),
        asyncio.create_task(_revocation_retries(state).run()),
        asyncio.create_task(_purge_sessions(state)),
    ]


async def _maintain_keys(state: AuthState) -> None:
    """Reread the keys folder, rotate when due, tidy retired keys; forever."""
    while True:
        await asyncio.sleep(state.settings.keys_check_seconds)
        try:
            done = await asyncio.to_thread(maintain, state.ring, state.settings)
            if done.created:
                await asyncio.to_thread(
                    audit.record_key_rotations, state.engine, done.created, by="schedule"
                )
        except OSError as exc:
            # A read-only keys folder (a secret mount) still rereads; it just
            # cannot be changed from here.
            logger.debug("keys folder not maintained: %s", exc)
            await asyncio.to_thread(state.ring.reload)
        except Exception:
            # The loop must outlive any one bad pass: a replica that stopped
            # rereading would sign with a key the others retired.
            logger.exception("keys folder maintenance failed; retrying")


def _revocation_retries(state: AuthState) -> RedisLoop:
    """Write revocations Redis refused, every revocation_retry_seconds; forever.

    The gateway's Redis jobs' loop; each write counts its own failure
    (``revocation_publish_failures_total``) and the loop only outlives a bad round.
    """

    async def retry() -> None:
        if state.revocations.pending:
            left = await asyncio.to_thread(state.revocations.retry)
            if not left:
                logger.info("held-back revocations published")

    return RedisLoop("revocation-retry", retry, interval=state.settings.revocation_retry_seconds)


async def _purge_sessions(state: AuthState) -> None:
    """Delete finished sessions and their refresh tokens, hourly; forever."""
    keep = timedelta(seconds=retention_seconds(state.settings))

    def purge() -> int:
        with Session(state.engine) as session:
            return sessions.purge_finished(session=session, keep_revoked=keep)

    while True:
        await asyncio.sleep(SESSION_PURGE_SECONDS)
        try:
            purged = await asyncio.to_thread(purge)
        except SQLAlchemyError as exc:
            logger.warning("finished sessions not purged: %s", str(exc).splitlines()[0][:200])
            continue
        if purged:
            logger.info("purged %d finished session(s)", purged)
