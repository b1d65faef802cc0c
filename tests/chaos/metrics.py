"""Reading a service's Prometheus metrics, to check what it says about a fault."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample at ``url`` as (name, labels, value)."""
    response = httpx.get(url, timeout=5.0)
    response.raise_for_status()
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def total(
    samples: list[tuple[str, dict[str, str], float]],
    name: str,
    labels: Mapping[str, str] | None = None,
) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = dict(labels or {})
    return sum(
        value
        for sample, found, value in samples
        if sample == name and all(found.get(k) == v for k, v in wanted.items())
    )


def names(samples: list[tuple[str, dict[str, str], float]], prefix: str) -> set[str]:
    """The sample names starting with ``prefix`` (for a check's error message)."""
    return {sample for sample, _, _ in samples if sample.startswith(prefix)}
