"""The chaos suite: faults injected one at a time under a steady load.

``make chaos`` runs the full profile (10 s outages); ``make test``
runs the short one. The modules here are the harness: a bounded load driver
(:mod:`chaos.load`), a client-side failover front over the gateways
(:mod:`chaos.front`), a PostgreSQL server of the suite's own
(:mod:`chaos.stores`; its Redis is a :class:`support.redis_server.RedisServer`),
the whole stack on free ports (:mod:`chaos.stack`), Prometheus scraping
(:mod:`chaos.metrics`), the profiles (:mod:`chaos.profiles`) and the result table
(:mod:`chaos.report`). The ``test_*`` modules are the faults.
"""
