"""Backends and the connections to them: state, pooled session, health, retries."""
