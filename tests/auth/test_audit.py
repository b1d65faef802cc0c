"""audit.redact: secrets never reach a detail, whatever key or shape they come under."""

from __future__ import annotations

import pytest

from gatehouse_auth.audit import OPERATOR_ACTIONS, REDACTED, AuditAction, redact

pytestmark = pytest.mark.unit

JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


def test_values_under_secret_keys_are_redacted_at_any_depth() -> None:
    detail = {
        "password": "hunter22",
        "New_Password": "x",
        "refresh_token": "abc",
        "totp_secret": "JBSWY3DPEHPK3PXP",
        "recovery_codes": ["abcde-fghjk"],
        "nested": [{"api_key": "k", "kept": 1}],
        "reason": "invalid_credentials",
        "kid": "key-1",
    }
    assert redact(detail) == {
        "password": REDACTED,
        "New_Password": REDACTED,
        "refresh_token": REDACTED,
        "totp_secret": REDACTED,
        "recovery_codes": REDACTED,
        "nested": [{"api_key": REDACTED, "kept": 1}],
        "reason": "invalid_credentials",
        "kid": "key-1",
    }


def test_a_jwt_is_redacted_under_any_key() -> None:
    assert redact({"note": f"Bearer {JWT}", "n": 1}) == {"note": REDACTED, "n": 1}
    assert redact([JWT]) == [REDACTED]


def test_operator_actions_are_only_the_gateways() -> None:
    assert {
        AuditAction.backend_drained,
        AuditAction.backend_undrained,
        AuditAction.canary_weights_changed,
    } == OPERATOR_ACTIONS
