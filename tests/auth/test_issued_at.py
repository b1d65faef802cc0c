"""``iat`` to the millisecond: a subject revoked at an instant denies exactly its earlier tokens."""

from __future__ import annotations

import pytest

from gatehouse_auth.tokens import issued_at


@pytest.mark.unit
def test_a_login_just_after_a_sign_out_in_the_same_second_is_not_revoked() -> None:
    revoked_at = 1_800_000_000.4  # revoke_subject's not-before (float seconds)
    before, after = issued_at(1_800_000_000.39999), issued_at(1_800_000_000.402)
    # the gateway's rule: a token is revoked when iat < not-before
    assert before < revoked_at
    assert after >= revoked_at  # whole seconds (1_800_000_000) would have refused it


@pytest.mark.unit
def test_it_never_rounds_up_past_the_real_instant() -> None:
    for moment in (1_800_000_000.0, 1_800_000_000.9999, 1_800_000_000.0005, 1_700_000_000.123456):
        assert issued_at(moment) <= moment < issued_at(moment) + 0.001
