"""The original Flask app's config format, mapped onto the gateway's own.

The original served ``/account``, ``/login`` and the accounts page itself;
here those live in other services, so their routes come from settings::

    proxy:
      listen: {address: "0.0.0.0", port: 8080}
      auth: True
      services:
        - name: service1
          domain: service1.my-company.com
          loadbalancing: "roundrobin"      # or "random"
          hosts: [{address: backend1, port: 9090}]
"""

from __future__ import annotations

from typing import Any

_STRATEGIES = {"roundrobin": "round_robin", "round_robin": "round_robin", "random": "random"}


def is_original_format(data: dict[str, Any]) -> bool:
    return "proxy" in data and "routes" not in data


def _service_route(index: int, service: Any, auth_required: bool) -> Any:
    """One ``services[i]`` entry as a route; shapes it cannot map are passed
    through as they are so validation names the offending key."""
    if not isinstance(service, dict):
        return service
    route: dict[str, Any] = {"name": service.get("name", f"service{index}")}
    if "domain" in service:
        route["hosts"] = [service["domain"]]
    balancing = service.get("loadbalancing", "roundrobin")
    route["strategy"] = _STRATEGIES.get(str(balancing).lower(), balancing)
    hosts = service.get("hosts")
    if isinstance(hosts, list):
        route["backends"] = [
            {"url": f"http://{h.get('address')}:{h.get('port', 80)}"} if isinstance(h, dict) else h
            for h in hosts
        ]
    else:
        route["backends"] = hosts
    route["auth"] = "required" if auth_required else "none"
    extra = set(service) - {"name", "domain", "loadbalancing", "hosts"}
    for key in sorted(extra):  # unknown keys reach the validator, which names them
        route[key] = service[key]
    return route


# What the auth service answers through the gateway: sign-up and the caller's
# own account, sign-in, sessions (refresh, logout), reset links, the JWKS and
# OpenID discovery. Account administration stays off the public route.
AUTH_PATHS = ("/account", "/login", "/logout", "/token/", "/password/", "/.well-known/")


def translate_original(
    data: dict[str, Any], *, auth_url: str, accounts_ui_url: str
) -> dict[str, Any]:
    """The original document as this gateway's config document (not yet validated)."""
    proxy = data.get("proxy")
    if not isinstance(proxy, dict):
        return {"proxy": proxy}
    auth_required = bool(proxy.get("auth", False))
    services = proxy.get("services") or []
    routes: list[Any] = (
        [_service_route(i, s, auth_required) for i, s in enumerate(services)]
        if isinstance(services, list)
        else [services]
    )
    routes += [
        {
            "name": "auth",
            "path_prefix": list(AUTH_PATHS),
            "backends": [{"url": auth_url}],
        },
        {
            "name": "accounts-ui",
            "path_prefix": "/accounts_page",
            "backends": [{"url": accounts_ui_url}],
        },
    ]
    converted: dict[str, Any] = {
        "routes": routes,
        # the original app answered /metrics on its one port
        "public_metrics": True,
        "auth": {"jwks_url": f"{auth_url.rstrip('/')}/.well-known/jwks.json"},
    }
    listen = proxy.get("listen")
    if listen is not None:
        converted["listen"] = listen
    return converted
