"""The Gatehouse benchmark harness: wrk against a backend, nginx and the gateway, side by side.

Run it with ``make bench`` (``loadtest/bench.py``); ``loadtest/README.md`` says
what each scenario measures and what the figures were.
"""
