"""Fault 4: the auth service dies; tokens it issued keep passing on the gateways' cached keys."""

from __future__ import annotations

import httpx

from chaos import faults
from chaos.load import BackgroundLoad
from chaos.profiles import Profile
from chaos.report import FaultReportFactory
from chaos.stack import CHAOS_HOST, ChaosStack

PROBES = 10


def _probe(stack: ChaosStack, token: str, path: str = "/chaos/probe") -> list[httpx.Response]:
    """One request per gateway per round with ``token``, straight to each gateway."""
    answers = []
    for _ in range(PROBES // len(stack.gateways)):
        for gateway in stack.gateways:
            answers.append(
                httpx.get(
                    gateway.url + path,
                    headers={"Host": CHAOS_HOST, "Authorization": f"Bearer {token}"},
                    timeout=10,
                )
            )
    return answers


def test_auth_service_down(
    stack: ChaosStack, profile: Profile, fault_report: FaultReportFactory
) -> None:
    report = fault_report(f"auth service killed {profile.outage:g}s")
    token = stack.user_token()
    # Issued before the outage but never shown to a gateway: it can only pass
    # on the cached signing keys, not on a cached verification of itself.
    unseen = stack.user_token()
    duration = profile.settle + profile.outage + profile.settle
    with BackgroundLoad(stack.chaos_load(token), rate=profile.rate, duration=duration) as load:
        load.sleep_until(profile.settle)
        with faults.killed(stack.auth):
            down_at = load.elapsed()
            unseen_answers = _probe(stack, unseen)
            forged_answers = _probe(stack, unseen[:-4] + "AAAA")
            with stack.client() as client:
                login = client.post("/login", json={"email": "x@example.com", "password": "y" * 9})
            load.sleep_until(down_at + profile.outage)
        after = faults.wait_until(lambda: bool(stack.user_token()), timeout=10)
    result = report.load(load.result)

    report.check(
        "zero failed requests with a valid token", result.failed == 0, result.describe_failures()
    )
    report.check(
        "an unseen valid token passes while auth is down",
        all(r.status_code == 200 for r in unseen_answers),
        str([r.status_code for r in unseen_answers]),
    )
    report.check(
        "a tampered token still gets 401",
        all(r.status_code == 401 for r in forged_answers),
        str([r.status_code for r in forged_answers]),
    )
    login_json = login.headers.get("content-type", "").startswith("application/json")
    report.check(
        f"login via the gateway meanwhile: {login.status_code} JSON, not 500",
        login.status_code in (502, 503) and login_json,
        login.text[:200],
    )
    report.check("auth back: signup and login work", after is not None, f"after {after}s")
    report.verdict()
