"""The operator view: admin API, drains shared through Redis, live dashboard.

- :mod:`.service`: :class:`Operator`, owned by the running gateway; one
  background loop that syncs drains and samples the dashboard's history;
- :mod:`.drain`: draining and restoring a backend, shared by every replica;
- :mod:`.history`: requests/s and error rate per backend over the last minutes;
- :mod:`.deps`: the running gateway and the admin-token check as FastAPI deps;
- :mod:`.api` and :mod:`.dashboard`: the routers under ``/-/``.
"""
