"""Keep the cyclic garbage collector's full collections off the proxy path.

After start-up the gateway holds a few hundred thousand long-lived objects
(FastAPI, pydantic, prometheus_client, the route table), and every full
collection walks all of them: about 20 ms with the event loop stopped, often
enough under load to make the proxy's p99 ten times its p50 (loadtest/README.md).
Freezing them moves them out of the collector's sight for good; the requests'
own short-lived objects are still collected as before.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Collect what is garbage now, then freeze everything that is left.

    Called once the gateway has started and again after each config reload: the
    earlier freeze is undone first, so a replaced route table that holds reference
    cycles is still collected instead of staying frozen for ever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Hand the frozen objects back to the collector (at shutdown: the app may be embedded)."""
    gc.unfreeze()
