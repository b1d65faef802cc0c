"""How long a fuzz run lasts and from which seed: bounded in make test, long in make fuzz.

``FUZZ_EXAMPLES`` (default 150) cases per harness; ``FUZZ_SECONDS``, when
set, runs each harness for half that time instead (``make fuzz`` runs both);
``FUZZ_SEED`` replays a run (the bounded run uses a fixed seed, a timed run
a fresh one, and every failure message names it).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_SEED = 20261201


@dataclass
class Budget:
    seed: int
    examples: int | None
    seconds: float | None

    def cases(self) -> Iterator[int]:
        """Case numbers until the budget is spent."""
        deadline = time.monotonic() + self.seconds if self.seconds else None
        index = 0
        while True:
            if self.examples is not None and index >= self.examples:
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            yield index
            index += 1


def budget() -> Budget:
    seconds = float(os.environ["FUZZ_SECONDS"]) / 2 if os.environ.get("FUZZ_SECONDS") else None
    seed_text = os.environ.get("FUZZ_SEED")
    if seed_text:
        seed = int(seed_text)
    else:
        seed = random.SystemRandom().randrange(2**32) if seconds else DEFAULT_SEED
    examples = None if seconds else int(os.environ.get("FUZZ_EXAMPLES", "150"))
    return Budget(seed=seed, examples=examples, seconds=seconds)
