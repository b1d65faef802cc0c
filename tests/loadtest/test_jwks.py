"""The benchmark's token verifies against its JWKS, as the gateway will check it."""

import jwt
import pytest
from gatehouse_loadtest.jwks import AUDIENCE, ISSUER, BenchKey


def test_token_verifies_against_the_published_key() -> None:
    key = BenchKey.generate()
    token = key.token(lifetime_s=600)
    (jwk,) = key.jwks()["keys"]
    assert jwk["kid"] == jwt.get_unverified_header(token)["kid"]
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["roles"] == ["user"]
    assert claims["exp"] - claims["iat"] == 600


def test_token_from_another_key_is_refused() -> None:
    token = BenchKey.generate().token()
    other = jwt.PyJWK(BenchKey.generate().jwks()["keys"][0]).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)
