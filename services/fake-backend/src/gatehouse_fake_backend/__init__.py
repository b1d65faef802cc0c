"""Backends for the Gatehouse gateway to balance over: echo, latency and fault injection."""
