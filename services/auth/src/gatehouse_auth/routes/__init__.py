"""The auth API's routers, one per resource."""

from __future__ import annotations

from fastapi import APIRouter

from gatehouse_auth.routes import (
    accounts,
    admin,
    audit,
    discovery,
    jwks,
    lockouts,
    login,
    password,
    sessions,
    totp,
)

api_router = APIRouter()
api_router.include_router(accounts.router)
api_router.include_router(login.router)
api_router.include_router(sessions.router)
api_router.include_router(jwks.router)
api_router.include_router(discovery.router)
api_router.include_router(lockouts.router)
api_router.include_router(admin.router)
api_router.include_router(password.router)
api_router.include_router(totp.router)
api_router.include_router(audit.router)

__all__ = ["api_router"]
