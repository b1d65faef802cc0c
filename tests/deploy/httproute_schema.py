"""A JSON schema of the Gateway API ``HTTPRoute`` (``gateway.networking.k8s.io/v1``).

Written here from the Gateway API v1 field reference (the standard channel's
``HTTPRouteSpec``), for the fields a route of this chart can hold; it is not
the CRD file itself, which no package on the registries this project reaches
ships. Every object refuses fields it does not list, so a misspelt key fails
as an API server would refuse it; enums, required fields, lengths, list sizes
and the host name and duration patterns are the reference's. The CRD's CEL
rules, which only an API server evaluates, are not here:
``tests/deploy/test_helm_httproute.py`` checks the ones that apply by hand.
"""

from __future__ import annotations

from typing import Any

_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
_GROUP = {
    "type": "string",
    "maxLength": 253,
    "pattern": r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_KIND = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$",
}
_NAMESPACE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
}
_SECTION = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_HOSTNAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
_DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}
_HEADER_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "pattern": r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$",
}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


_PARENT_REF = _obj(
    {
        "group": _GROUP,
        "kind": _KIND,
        "namespace": _NAMESPACE,
        "name": _NAME,
        "sectionName": _SECTION,
        "port": _PORT,
    },
    ["name"],
)
_PATH_MATCH = _obj(
    {
        "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
        "value": {"type": "string", "maxLength": 1024},
    }
)
_HEADER_MATCH = _obj(
    {
        "type": {"enum": ["Exact", "RegularExpression"]},
        "name": _HEADER_NAME,
        "value": {"type": "string", "minLength": 1, "maxLength": 4096},
    },
    ["name", "value"],
)
_MATCH = _obj(
    {
        "path": _PATH_MATCH,
        "headers": {"type": "array", "maxItems": 16, "items": _HEADER_MATCH},
        "queryParams": {"type": "array", "maxItems": 16, "items": _HEADER_MATCH},
        "method": {
            "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
        },
    }
)
_HEADER_VALUE = _obj(
    {"name": _HEADER_NAME, "value": {"type": "string", "minLength": 1, "maxLength": 4096}},
    ["name", "value"],
)
_HEADER_FILTER = _obj(
    {
        "set": {"type": "array", "maxItems": 16, "items": _HEADER_VALUE},
        "add": {"type": "array", "maxItems": 16, "items": _HEADER_VALUE},
        "remove": {"type": "array", "maxItems": 16, "items": {"type": "string"}},
    }
)
_FILTER = _obj(
    {
        "type": {
            "enum": [
                "RequestHeaderModifier",
                "ResponseHeaderModifier",
                "RequestMirror",
                "RequestRedirect",
                "URLRewrite",
                "ExtensionRef",
            ]
        },
        "requestHeaderModifier": _HEADER_FILTER,
        "responseHeaderModifier": _HEADER_FILTER,
    },
    ["type"],
)
_BACKEND_REF = _obj(
    {
        "group": _GROUP,
        "kind": _KIND,
        "name": _NAME,
        "namespace": _NAMESPACE,
        "port": _PORT,
        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
        "filters": {"type": "array", "maxItems": 16, "items": _FILTER},
    },
    ["name"],
)
_RULE = _obj(
    {
        "name": _SECTION,
        "matches": {"type": "array", "maxItems": 64, "items": _MATCH},
        "filters": {"type": "array", "maxItems": 16, "items": _FILTER},
        "backendRefs": {"type": "array", "maxItems": 16, "items": _BACKEND_REF},
        "timeouts": _obj({"request": _DURATION, "backendRequest": _DURATION}),
    }
)

HTTPROUTE_V1: dict[str, Any] = _obj(
    {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": {"type": "object"},  # Kubernetes checks metadata itself
        "spec": _obj(
            {
                "parentRefs": {"type": "array", "maxItems": 32, "items": _PARENT_REF},
                "hostnames": {"type": "array", "maxItems": 16, "items": _HOSTNAME},
                "rules": {"type": "array", "maxItems": 16, "items": _RULE},
            }
        ),
        "status": {"type": "object"},
    },
    ["apiVersion", "kind", "metadata", "spec"],
)
