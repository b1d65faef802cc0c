"""The edge rules: what a client's request head may say before anything acts on it.

One normalised path (``path``), the request headers the gateway keeps, drops
or refuses (``headers``), and where forwarding headers come from (``forwarding``).
"""

from gatehouse_gateway.edge.path import BadPath, EscapedSlashes, normalise_path

__all__ = ["BadPath", "EscapedSlashes", "normalise_path"]
