"""The echo: what the backend saw, so a test can check what the gateway sent."""

from __future__ import annotations

import hashlib

from starlette.requests import Request

# Repeated headers are joined with ", " as HTTP allows; Set-Cookie never
# arrives on a request, so no header is mangled by the join.


async def describe_request(request: Request, instance: str) -> dict[str, object]:
    """Method, path, query, headers and the body's size and SHA-256.

    The body is hashed as it streams in, never held whole, so a 100 MB upload
    costs this process no more memory than a small one.
    """
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        digest.update(chunk)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return {
        "instance": instance,
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": headers,
        "body": {"size": size, "sha256": digest.hexdigest()},
    }
