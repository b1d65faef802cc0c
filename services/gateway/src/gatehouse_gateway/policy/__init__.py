"""Traffic policy at the edge: who a request counts against, and what a route does with it.

Each policy is compiled with its route at config load and applied on the hot
path from memory; state shared across replicas lives in Redis behind
:mod:`gatehouse_gateway.redis_store`, read and written off the request path.
"""
