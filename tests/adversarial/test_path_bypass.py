"""Attack 2: a path that routes as public but names a private resource.

Route ``public`` (``/public``, no auth) and route ``private`` (``/``, token
required) share a backend. If the gateway routes on the raw path while the
backend resolves dot segments, decodes ``%2e``/``%2f`` or merges slashes, then
``/public/../admin`` passes as public and the backend serves ``/admin``
without a token. The edge contract: one normalised path (dot segments
removed, slashes merged, encoded separators refused) is what routing, auth and
the backend all see, and prefixes match whole segments.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import unquote

import pytest
from adversarial.raw import RawResponse, get
from adversarial.support import route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.gateway import GatewayProcess, Launcher

HOST = "paths.gatehouse.test"
SEGMENT_HOST = "segments.gatehouse.test"

# Each normalises (or falls) outside /public: the private route must answer (401).
PRIVATE_IN_DISGUISE = [
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/%2E%2E/admin",
    "/public/.%2e/admin",
    "/public/%2e./admin",
    "/publicXYZ/../admin",
    "/public//../admin",
    "/publicXYZ",
    "/public/./../admin",
    "/public/x/../../admin",
]
# Encoded separators and backslashes: no single meaning, refused (400).
AMBIGUOUS = [
    "/public/..%2fadmin",
    "/public/..%2Fadmin",
    "/public%2f..%2fadmin",
    "/public/..%5cadmin",
    "/public/..\\admin",
]


@pytest.fixture(scope="module")
def backend(module_launcher: Launcher) -> Any:
    return module_launcher.backends(1, prefix="paths")[0]


@pytest.fixture(scope="module")
def gateway(
    module_launcher: Launcher, backend: Any, auth_section: dict[str, Any]
) -> GatewayProcess:
    document = {
        "auth": auth_section,
        "routes": [
            route("public", [backend], [HOST], path_prefix="/public"),
            route("private", [backend], [HOST], path_prefix="/", auth="required"),
            route("account", [backend], [SEGMENT_HOST], path_prefix="/account"),
            route("rest", [backend], [SEGMENT_HOST], path_prefix="/", auth="required"),
        ],
    }
    return module_launcher.gateway(document)


def _get(gateway: GatewayProcess, target: str, host: str = HOST) -> RawResponse:
    return get(gateway.url, target, host)


@pytest.mark.parametrize("target", PRIVATE_IN_DISGUISE)
def test_private_path_in_public_disguise_needs_a_token(
    gateway: GatewayProcess, target: str
) -> None:
    response = _get(gateway, target)
    echo = response.echo
    assert echo is None, (
        f"{target} reached the backend without a token as {echo['path']!r}: {response.describe()}"
    )
    assert response.status == 401, f"{target}: expected 401, got {response.describe()}"


@pytest.mark.parametrize("target", AMBIGUOUS)
def test_encoded_separators_are_refused(gateway: GatewayProcess, target: str) -> None:
    response = _get(gateway, target)
    echo = response.echo
    assert echo is None, f"{target} reached the backend as {echo['path']!r}"
    assert response.status == 400, f"{target}: expected 400, got {response.describe()}"
    assert response.json().get("error"), response.describe()


@pytest.mark.parametrize(
    ("target", "seen"),
    [
        ("/public", "/public"),
        ("/public/x", "/public/x"),
        ("/public//a/./b/../c", "/public/a/c"),
        ("/public/a/%2e%2e/b", "/public/b"),
        ("/public/x%41", "/public/xA"),
    ],
)
def test_public_paths_reach_the_backend_normalised(
    gateway: GatewayProcess, target: str, seen: str
) -> None:
    response = _get(gateway, target)
    echo = response.echo
    assert echo is not None, f"{target}: expected the backend, got {response.describe()}"
    assert echo["path"] == seen, (
        f"{target}: routed as public, the backend got {echo['path']!r}, not {seen!r}"
    )


@pytest.mark.parametrize(
    ("target", "public"),
    [("/account", True), ("/account/x", True), ("/accounts", False), ("/account-x", False)],
)
def test_prefixes_match_whole_segments(gateway: GatewayProcess, target: str, public: bool) -> None:
    response = _get(gateway, target, SEGMENT_HOST)
    if public:
        assert response.echo is not None, f"{target} under /account: {response.describe()}"
    else:
        assert response.status == 401, (
            f"{target} is not under /account, yet answered {response.describe()}"
        )


def test_string_path_match_keeps_the_old_prefix_rule(launcher: Launcher, backend: Any) -> None:
    account = route("account", [backend], [SEGMENT_HOST], path_prefix="/account")
    document = {"routes": [{**account, "path_match": "string"}]}
    gateway = launcher.gateway(document)
    response = _get(gateway, "/accounts", SEGMENT_HOST)
    assert response.echo is not None, f"path_match: string, /accounts: {response.describe()}"


def _normalise(target: str) -> str | None:
    """The reference: decode unreserved escapes, merge slashes, drop dot segments."""
    if re.search(r"%2f|%5c|\\", target, re.IGNORECASE):
        return None
    decoded = unquote(target)
    merged = re.sub("/+", "/", decoded)
    trailing = merged.endswith(("/", "/.", "/..")) and merged != "/"
    resolved = posixpath.normpath(merged)
    resolved = "/" + resolved.lstrip("/")
    return resolved + "/" if trailing and resolved != "/" else resolved


def _in_public(path: str) -> bool:
    return path == "/public" or path.startswith("/public/")


SEGMENTS = st.sampled_from(["a", "..", ".", "%2e", "%2E%2e", "", "public", "x%41"])


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(segments=st.lists(SEGMENTS, min_size=1, max_size=7))
def test_route_and_backend_path_name_the_same_resource(
    gateway: GatewayProcess, segments: list[str]
) -> None:
    """Whatever the path, an answer without a token comes from under /public, as routed."""
    target = "/" + "/".join(segments)
    response = _get(gateway, target)
    echo = response.echo
    expected = _normalise(target)
    if echo is None:
        assert response.status in (400, 401), f"{target}: {response.describe()}"
        return
    path = echo["path"]
    assert _in_public(path), (
        f"{target} was answered without a token, and the backend got {path!r} (outside /public)"
    )
    assert expected is not None and _in_public(expected), (
        f"{target} normalises to {expected!r}, yet the backend answered it as {path!r}"
    )
    assert path.rstrip("/") == expected.rstrip("/"), (
        f"{target}: the gateway routed on {expected!r} but the backend got {path!r}"
    )
