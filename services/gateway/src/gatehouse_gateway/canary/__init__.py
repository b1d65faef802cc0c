"""Canary and header routing: a route's split between its backend groups.

:mod:`.split` picks a group per request (match rules, then weights, maybe
sticky per consumer); :mod:`.weights` changes the weights at run time and
shares them across replicas through Redis.
"""

from gatehouse_gateway.canary.split import Splitter

__all__ = ["Splitter"]
