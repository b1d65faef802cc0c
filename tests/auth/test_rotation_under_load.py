"""A signing key rotation under load through two gateways and two auth replicas: zero 401s.

Two auth replicas share a keys folder and a PostgreSQL database; each gateway
verifies against a different replica's JWKS with a short cache (1 s) and an
unknown-kid refetch allowed only every 2 s, so a key that signed before the
gateways had it would be refused. Tokens are minted continuously at both
replicas (before, during and after the rotation) and used at once and later
through both gateways.

The control run rotates with ``key_publish_ahead_seconds=0`` (the new key
signs as soon as the replicas see it): that must produce 401s, which is what
shows the pending stage, not luck, is why the real run has none.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from support.auth import PASSWORD, AuthService, auth_env, launch, run_cli, signup
from support.gateway import HOST, Launcher, gateway_route
from support.processes import ServiceProcess, stop_all

from gatehouse_auth.keys import stamp_of

JWKS_TTL = 1.0
JWKS_MIN_REFRESH = 2.0
KEYS_CHECK = 0.5
PUBLISH_AHEAD = JWKS_TTL + JWKS_MIN_REFRESH + KEYS_CHECK + 1.0  # with a margin
REQUESTERS = 4
# Requests answered before the rotation, and after the switch: counts, not
# seconds, so a busy machine makes the run longer rather than thinner.
BEFORE_ROTATION = 50
AFTER_SWITCH = 200


class Drive:
    """Mints tokens at both replicas and spends them through both gateways, recording answers."""

    def __init__(self, auths: list[AuthService], gateways: list[str], email: str) -> None:
        self.auths = auths
        self.gateways = gateways
        self.email = email
        self.tokens: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.refused: list[str] = []
        self.used_kids_after: Counter[str] = Counter()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.mark: float | None = None

    def mint(self) -> None:
        clients = [auth.client() for auth in self.auths]
        try:
            for client in itertools.cycle(clients):
                if self.stop.is_set():
                    return
                response = client.post("/login", json={"email": self.email, "password": PASSWORD})
                assert response.status_code == 200, response.text
                with self.lock:
                    self.tokens.append(response.json()["access_token"])
                time.sleep(0.1)
        finally:
            for client in clients:
                client.close()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        """Until ``condition()`` holds (read under the lock): the load runs meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if condition():
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")

    def spend(self, seed: int) -> None:
        chooser = random.Random(seed)
        clients = [
            httpx.Client(base_url=url, timeout=30, headers={"Host": HOST}) for url in self.gateways
        ]
        try:
            while not self.stop.is_set():
                with self.lock:
                    # mostly the newest tokens (a key just switched), sometimes any older one
                    token = (
                        self.tokens[-1] if chooser.random() < 0.6 else chooser.choice(self.tokens)
                    )
                response = chooser.choice(clients).get(
                    "/x", headers={"Authorization": f"Bearer {token}"}
                )
                with self.lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code != 200:
                        self.refused.append(response.text[:200])
                    if self.mark is not None and response.status_code == 200:
                        self.used_kids_after[jwt.get_unverified_header(token)["kid"]] += 1
        finally:
            for client in clients:
                client.close()


def _first_key_stamp(auth: AuthService) -> float:
    """When the replicas' one key was made (the time its file name starts with)."""
    (stamp,) = [s for s in (stamp_of(p.name) for p in auth.keys_dir.glob("*.pem")) if s]
    return stamp


def _kids(tokens: list[str]) -> set[str]:
    return {jwt.get_unverified_header(token)["kid"] for token in tokens}


def _replicas(tmp_path: Path, database_url: str, publish_ahead: float) -> list[AuthService]:
    keys_dir = tmp_path / "shared-keys"
    replicas = []
    for name in ("a", "b"):
        data_dir = tmp_path / f"auth-{name}"
        env = auth_env(
            data_dir,
            database_url=database_url,
            redis_prefix=None,
            keys_dir=str(keys_dir),
            key_publish_ahead_seconds=str(publish_ahead),
            keys_check_seconds=str(KEYS_CHECK),
        )
        replicas.append(launch(data_dir, f"rotation-{name}", env))
    return replicas


@pytest.mark.parametrize(
    ("publish_ahead", "control"), [(PUBLISH_AHEAD, False), (0.0, True)], ids=["staged", "control"]
)
def test_a_rotation_under_load_produces_no_401(
    publish_ahead: float,
    control: bool,
    tmp_path: Path,
    fresh_postgres_url: str,
    launcher: Launcher,
    backends: list[ServiceProcess],
) -> None:
    auths = _replicas(tmp_path, fresh_postgres_url, publish_ahead)
    try:
        gateways = [
            launcher.gateway(
                {
                    "auth": {
                        "jwks_url": auth.url + "/.well-known/jwks.json",
                        "jwks_ttl": JWKS_TTL,
                        "jwks_min_refresh_interval": JWKS_MIN_REFRESH,
                    },
                    "routes": [gateway_route(backends[:1], auth="required")],
                },
                name=f"gateway-{index}",
            ).url
            for index, auth in enumerate(auths)
        ]
        with auths[0].client() as client:
            account = signup(client)
        # the first key signs on its own (out of its pending stage), like one a
        # deployment has used for a while; starting the gateways took part of that
        time.sleep(max(0.0, _first_key_stamp(auths[0]) + publish_ahead - time.time()))
        drive = Drive(auths, gateways, account["email"])
        with auths[1].client() as client:
            first = client.post("/login", json={"email": account["email"], "password": PASSWORD})
            drive.tokens.append(first.json()["access_token"])
        threads = [threading.Thread(target=drive.mint)] + [
            threading.Thread(target=drive.spend, args=(seed,)) for seed in range(REQUESTERS)
        ]
        for thread in threads:
            thread.start()
        try:
            # the gateways verify the first key's tokens under load before the rotation
            drive.wait_for(
                lambda: len(drive.tokens) >= 4 and sum(drive.statuses.values()) >= BEFORE_ROTATION,
                "load before the rotation",
            )
            old_kid = jwt.get_unverified_header(drive.tokens[-1])["kid"]
            rotated = run_cli(auths[0].env, "keys", "rotate")
            assert "new key" in rotated.stdout, rotated.stdout + rotated.stderr
            # through the pending stage and the switch: the new key signs
            drive.wait_for(lambda: _kids(drive.tokens) != {old_kid}, "the new key to sign")
            if not control:
                time.sleep(KEYS_CHECK + 1)  # both replicas are past the switch
            with drive.lock:
                drive.mark = time.time()
                spent_at_mark = sum(drive.statuses.values())
            if control:
                # without the pending stage a gateway meets the new kid before its JWKS has it
                drive.wait_for(
                    lambda: any("unknown_kid" in body for body in drive.refused),
                    "an unknown_kid 401 in the control run",
                )
            else:
                # and a while after it: both keys' tokens pass, many requests later
                drive.wait_for(
                    lambda: (
                        set(drive.used_kids_after) == _kids(drive.tokens)
                        and sum(drive.statuses.values()) - spent_at_mark >= AFTER_SWITCH
                    ),
                    "tokens of both keys spent after the switch",
                    timeout=60,
                )
        finally:
            drive.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        kids = _kids(drive.tokens)
        assert len(kids) == 2 and old_kid in kids  # tokens of both keys were minted
        total = sum(drive.statuses.values())
        if control:
            print(f"control (no pending stage): {total} requests, {dict(drive.statuses)}")
            assert drive.statuses[401] >= 1, drive.statuses
            assert any("unknown_kid" in body for body in drive.refused)
            return
        assert drive.statuses == Counter({200: total}), (drive.statuses, drive.refused[:3])
        assert total >= 100
        # after the switch, tokens of the old key (minted before) and the new one both passed
        assert set(drive.used_kids_after) == kids, drive.used_kids_after
        print(f"rotation under load: {total} requests, {dict(drive.statuses)}")
    finally:
        stop_all(auth.process for auth in auths)
