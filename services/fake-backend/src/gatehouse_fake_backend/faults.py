"""The faults an instance injects, changeable at run time through its admin endpoint."""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Current fault settings; every field may be changed while serving."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(default=0.0, ge=0, le=600_000, description="delay before answering")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests that fail")
    error_status: int = Field(default=503, ge=400, le=599, description="status of a failed request")
    healthy: bool = Field(default=True, description="whether /healthz answers 200")


class FaultsUpdate(BaseModel):
    """A partial change to :class:`Faults`; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(default=None, ge=0, le=600_000)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    error_status: int | None = Field(default=None, ge=400, le=599)
    healthy: bool | None = None


class FaultInjector:
    """Applies :class:`Faults` to a request: waits, then decides whether it fails."""

    def __init__(self, initial: Faults, *, rng: random.Random | None = None) -> None:
        self.initial = initial.model_copy()
        self.faults = initial.model_copy()
        self._rng = rng or random.Random()

    def update(self, change: FaultsUpdate) -> Faults:
        for field, value in change.model_dump(exclude_none=True).items():
            setattr(self.faults, field, value)
        return self.faults

    def reset(self) -> Faults:
        self.faults = self.initial.model_copy()
        return self.faults

    async def delay(self) -> None:
        if self.faults.latency_ms > 0:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    def should_fail(self) -> bool:
        rate = self.faults.error_rate
        return rate > 0 and (rate >= 1 or self._rng.random() < rate)
