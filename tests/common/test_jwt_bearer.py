"""bearer_token: the token out of an Authorization header, and TokenError's bounded reasons."""

from __future__ import annotations

import pytest

from gatehouse_common.jwt import TOKEN_ERROR_REASONS, TokenError, bearer_token

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc", "abc"),
        (b"Bearer abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("abc.def.ghi", "abc.def.ghi"),
        (b"abc.def.ghi", "abc.def.ghi"),
        ("", None),
        (b"", None),
        (None, None),
        ("   ", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer a b", None),
        ("Token abc", None),
    ],
)
def test_bearer_token(header: str | bytes | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_token_error_reasons_are_a_fixed_set() -> None:
    assert len(TOKEN_ERROR_REASONS) == len(set(TOKEN_ERROR_REASONS)) == 11
    for reason in TOKEN_ERROR_REASONS:
        error = TokenError(reason)
        assert error.reason == reason and error.detail
    with pytest.raises(ValueError, match="unknown token error reason"):
        TokenError("made-up-by-a-client")  # type: ignore[arg-type]
