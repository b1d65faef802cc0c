"""/.well-known/openid-configuration, consumed by a real client library (PyJWT's PyJWKClient)."""

from __future__ import annotations

import httpx
import jwt
from support.auth import PASSWORD, AuthService, StartAuth, login_token, signup


def test_a_client_library_finds_the_keys_and_verifies_a_login_token(
    auth_service: AuthService, client: httpx.Client
) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("public")
    discovery = response.json()
    account = signup(client)
    token = login_token(client, account["email"], PASSWORD)

    keys = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
    signing_key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience="gatehouse",
        issuer=discovery["issuer"],
    )
    assert claims["email"] == account["email"]
    assert claims["sid"] and claims["jti"]


def test_the_document_names_every_endpoint(client: httpx.Client, auth_service: AuthService) -> None:
    discovery = client.get("/.well-known/openid-configuration").json()
    base = auth_service.url
    assert discovery["issuer"] == "gatehouse-auth"
    assert discovery["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert discovery["token_endpoint"] == f"{base}/login"
    assert discovery["refresh_endpoint"] == f"{base}/token/refresh"
    assert discovery["revocation_endpoint"] == f"{base}/logout"
    assert discovery["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert "refresh_token" in discovery["grant_types_supported"]
    assert discovery["subject_types_supported"] == ["public"]
    assert discovery["response_types_supported"]
    # every URL named really answers
    for name in ("jwks_uri",):
        assert httpx.get(discovery[name], timeout=10).status_code == 200
    for name in ("refresh_endpoint", "revocation_endpoint"):
        assert httpx.post(discovery[name], json={}, timeout=10).status_code in (401, 422)


def test_behind_the_gateway_the_public_url_is_used(start_auth: StartAuth) -> None:
    service = start_auth(
        name="discovery",
        redis=False,
        public_url="https://gatehouse.example",
        issuer="https://gatehouse.example",
    )
    with service.client() as client:
        discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == "https://gatehouse.example"
    assert discovery["jwks_uri"] == "https://gatehouse.example/.well-known/jwks.json"
    assert discovery["token_endpoint"] == "https://gatehouse.example/login"
