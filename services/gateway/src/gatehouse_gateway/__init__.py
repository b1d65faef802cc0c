"""The Gatehouse gateway: a load-balancing reverse proxy that verifies JWTs."""
