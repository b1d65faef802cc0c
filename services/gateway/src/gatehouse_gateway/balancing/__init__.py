"""Load-balancing strategies; every one skips backends that are not available."""

from gatehouse_gateway.backend_state import BackendState
from gatehouse_gateway.balancing.base import Balancer
from gatehouse_gateway.balancing.cursor import Cursor, LocalCursor
from gatehouse_gateway.balancing.least_requests import LeastRequests
from gatehouse_gateway.balancing.random import RandomBalancer
from gatehouse_gateway.balancing.round_robin import RoundRobin
from gatehouse_gateway.balancing.weighted import SmoothWeighted

__all__ = [
    "Balancer",
    "Cursor",
    "LeastRequests",
    "LocalCursor",
    "RandomBalancer",
    "RoundRobin",
    "SmoothWeighted",
    "make_balancer",
]


def make_balancer(
    strategy: str, route: str, backends: list[BackendState], cursor: Cursor
) -> Balancer:
    """The balancer a route's ``strategy`` names."""
    if strategy == "round_robin":
        return RoundRobin(backends, cursor=cursor, key=route)
    if strategy == "random":
        return RandomBalancer(backends)
    if strategy == "weighted_round_robin":
        return SmoothWeighted(backends)
    if strategy == "least_requests":
        return LeastRequests(backends)
    raise ValueError(f"unknown strategy {strategy!r}")
