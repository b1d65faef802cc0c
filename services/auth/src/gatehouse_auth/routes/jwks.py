"""The public keys, for anyone verifying this service's tokens (the gateway first)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gatehouse_auth.deps import StateDep
from gatehouse_auth.schemas import JWKS

router = APIRouter(tags=["keys"])

# Verifiers may cache the set: they refetch it on an unknown kid, so a newly
# added key is picked up at once and retired keys drop out within minutes.
_CACHE_CONTROL = "public, max-age=300"


@router.get("/.well-known/jwks.json", summary="The JSON Web Key Set of every active key")
async def jwks(state: StateDep, response: Response) -> JWKS:
    response.headers["Cache-Control"] = _CACHE_CONTROL
    return JWKS(**state.ring.jwks())
