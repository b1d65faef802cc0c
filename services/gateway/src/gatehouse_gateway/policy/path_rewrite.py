"""Path rewriting at run time: the backend's path from the client's, and back for redirects.

The route is matched on the client's normalised path; only the target the
backend receives is rewritten (its query kept as sent). Prefixes are whole
segments: ``strip_prefix: /api`` turns ``/api/users`` into ``/users`` and
``/api`` into ``/``, and leaves ``/apix`` alone. The result is always an
absolute path.

A backend that redirects inside its own space (``Location: /login``, or
``http://<client's host>/login``) would send the client somewhere the route
does not go, so ``Location`` and ``Content-Location`` pointing under the
backend's prefix are mapped back (``/login`` -> ``/api/login``), as nginx's
default ``proxy_redirect`` does for a ``proxy_pass`` with a path. URLs naming
another host, relative references (``login``, ``../x``) and ``Refresh`` pass
as sent.
"""

from __future__ import annotations

from gatehouse_gateway.config.rewrite import PathRewriteConfig

_MAPPED = frozenset({b"location", b"content-location"})
_ENDS = (b"?", b"#")


def _swap(path: bytes, source: bytes, base: bytes) -> bytes | None:
    """``path`` with the segment prefix ``source`` replaced by ``base``; None if not under it."""
    if source == b"/":
        rest = path
    elif path == source:
        rest = b""
    elif path.startswith(source) and path[len(source) : len(source) + 1] in (b"/", *_ENDS):
        rest = path[len(source) :]
    else:
        return None
    if not rest or rest[:1] in _ENDS:  # the prefix itself, maybe with a query or fragment
        return (base or b"/") + rest
    return base + rest


class PathRewrite:
    """One route's ``path_rewrite:`` compiled to byte prefixes."""

    __slots__ = ("_back_base", "_back_source", "_base", "_source")

    def __init__(self, config: PathRewriteConfig) -> None:
        source = config.source.encode("ascii")
        target = config.target.encode("ascii")
        self._source = source
        # "/" as a replacement contributes no bytes: /api/x -> "" + /x
        self._base = target.rstrip(b"/")
        self._back_source = target
        self._back_base = source.rstrip(b"/")

    def backend_path(self, path: bytes) -> bytes:
        """The path the backend sees for the client's normalised ``path``."""
        swapped = _swap(path, self._source, self._base)
        return path if swapped is None else swapped

    def client_url(self, name: bytes, value: bytes, origin: bytes) -> bytes:
        """A ``Location``-like header value mapped back into the client's path space."""
        if name not in _MAPPED:
            return value
        if value.startswith(b"/") and not value.startswith(b"//"):
            swapped = _swap(value, self._back_source, self._back_base)
            return value if swapped is None else swapped
        prefix = origin + b"/"
        if value[: len(prefix)].lower() == prefix.lower():
            swapped = _swap(value[len(origin) :], self._back_source, self._back_base)
            return value if swapped is None else value[: len(origin)] + swapped
        return value
