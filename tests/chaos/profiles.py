"""How long and how hard: the short profile ``make test`` runs, the full one ``make chaos`` runs.

The full profile has 10 s outages and a 2 s slow backend; the short one keeps
every fault but shortens outages and loads so the whole suite stays within
about three minutes on two cores. Choose with ``GATEHOUSE_CHAOS_PROFILE=short|full``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "GATEHOUSE_CHAOS_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    # requests per second of the steady GET load through the gateways
    rate: float
    # seconds of load before a fault, and after recovery, as a baseline
    settle: float
    # seconds Redis, PostgreSQL and the auth service stay down
    outage: float
    # seconds a killed backend stays dead before it is restarted
    backend_down: float
    # latency of the slow backend, seconds (2 s in the full profile)
    slow_latency: float
    # signups per second sent across the PostgreSQL outage
    signup_rate: float
    # schemathesis examples per operation
    schema_examples: int


SHORT = Profile(
    name="short",
    rate=80.0,
    settle=1.5,
    outage=3.0,
    backend_down=4.0,
    slow_latency=2.0,
    signup_rate=4.0,
    schema_examples=8,
)
FULL = Profile(
    name="full",
    rate=200.0,
    settle=5.0,
    outage=10.0,
    backend_down=10.0,
    slow_latency=2.0,
    signup_rate=10.0,
    schema_examples=60,
)
PROFILES = {p.name: p for p in (SHORT, FULL)}


def current() -> Profile:
    name = os.environ.get(ENV, "short").strip().lower()
    if name not in PROFILES:
        raise ValueError(f"{ENV}={name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]
