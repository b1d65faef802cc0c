"""The app around the routes: OpenAPI docs with examples, health, request ids."""

from __future__ import annotations

import httpx
from support.auth import AuthService


def test_openapi_documents_every_route_with_examples(client: httpx.Client) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/account",
        "/login",
        "/.well-known/jwks.json",
        "/accounts",
        "/me",
        "/lockouts",
        "/lockouts/{email}",
    ):
        assert path in paths
    schemas = spec["components"]["schemas"]
    assert schemas["AccountCreate"]["examples"][0]["email"] == "alice@example.com"
    assert schemas["LoginRequest"]["examples"]
    assert schemas["TokenResponse"]["examples"]
    assert "hashed_password" not in str(spec)
    assert set(paths["/account"]["post"]["responses"]) >= {"201", "409", "422", "429"}
    assert schemas["LockoutPublic"]["examples"]
    assert {"401", "429"} <= set(paths["/login"]["post"]["responses"])
    # errors are documented with the shape they really have (not FastAPI's default 422)
    assert "HTTPValidationError" not in schemas
    invalid = paths["/login"]["post"]["responses"]["422"]["content"]["application/json"]
    assert invalid["schema"]["$ref"].endswith("/ValidationErrorBody")
    denied = paths["/accounts"]["get"]["responses"]["403"]["content"]["application/json"]
    assert denied["schema"]["$ref"].endswith("/ErrorBody")


def test_health_and_readiness_check_dependencies(
    auth_service: AuthService, client: httpx.Client
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok"
    assert set(ready["checks"]) == {"database", "redis"}


def test_request_ids_are_echoed(client: httpx.Client) -> None:
    response = client.post("/login", json={}, headers={"X-Request-ID": "trace-auth-1"})
    assert response.headers["x-request-id"] == "trace-auth-1"


def test_unknown_paths_and_methods_are_json(client: httpx.Client) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"]
    wrong_method = client.get("/login")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]
