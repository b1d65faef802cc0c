"""The gateway freezes its long-lived objects, and unfreezes them on the next freeze."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gatehouse_gateway.heap import freeze_long_lived

pytestmark = pytest.mark.unit


class _Node:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    """Leave the test process's collector as it was found."""
    yield
    gc.unfreeze()


def test_long_lived_objects_leave_the_collectors_sight() -> None:
    kept = _Node()
    freeze_long_lived()
    assert gc.get_freeze_count() > 0
    assert kept not in gc.get_objects()  # a full collection no longer walks it


def test_cyclic_garbage_frozen_earlier_is_collected_on_the_next_freeze() -> None:
    """A route table replaced by a reload is garbage; it must not stay frozen for ever."""
    replaced = _Node()
    alive = weakref.ref(replaced)
    freeze_long_lived()
    del replaced
    gc.collect()
    assert alive() is not None  # frozen: the collector does not see the cycle
    freeze_long_lived()
    assert alive() is None
