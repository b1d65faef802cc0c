"""The Gatehouse auth service: accounts, login, signed JWTs and JWKS."""
