"""What every Gatehouse service shares.

- :mod:`~gatehouse_common.settings`: the pydantic-settings base class;
- :mod:`~gatehouse_common.logs`, :mod:`~gatehouse_common.request_id`,
  :mod:`~gatehouse_common.middleware`: JSON logs carrying the request id;
- :mod:`~gatehouse_common.metrics`: Prometheus wiring with useful buckets;
- :mod:`~gatehouse_common.health`: liveness and readiness endpoints;
- :mod:`~gatehouse_common.errors`: the JSON error shape and its handlers;
- :mod:`~gatehouse_common.jwt`: bearer tokens verified against an issuer's JWKS;
- :mod:`~gatehouse_common.app`: a FastAPI app with all of the above;
- :mod:`~gatehouse_common.server`, :mod:`~gatehouse_common.cli`: running it.
"""
