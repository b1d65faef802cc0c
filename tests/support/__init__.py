"""Test support: real processes on free ports, real PostgreSQL databases, Redis prefixes."""
