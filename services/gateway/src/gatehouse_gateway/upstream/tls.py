"""TLS to backends: one client-side SSL context per distinct ``tls`` block of the config.

Contexts are built when a config is loaded, so a missing or unreadable CA,
certificate or key fails the load (and a reload keeps the running config)
instead of failing requests. The same block always gives the same
:class:`UpstreamTLS` object, because the upstream client keys its connection
pools by it: a reload that keeps a route's TLS settings keeps its pooled
connections, and one that changes them gets fresh pools.
"""

from __future__ import annotations

import logging
import ssl

from gatehouse_gateway.config.schema import UpstreamTLSConfig

logger = logging.getLogger(__name__)


class UpstreamTLS:
    """The context a pool's connections handshake with, and the name they ask for.

    Compared and hashed by identity: :class:`TLSContexts` hands out one per block.
    """

    __slots__ = ("config", "context", "server_name")

    def __init__(self, config: UpstreamTLSConfig) -> None:
        self.config = config
        self.context = client_context(config)
        self.server_name = config.server_name


def client_context(config: UpstreamTLSConfig) -> ssl.SSLContext:
    """A client context as ``config`` asks: TLS 1.2+, verified unless told otherwise.

    Raises ``OSError`` / ``ssl.SSLError`` when a file is missing or not PEM.
    """
    context = ssl.create_default_context(cafile=config.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class TLSContexts:
    """The contexts of the running and earlier configs, by their (frozen) ``tls`` block."""

    def __init__(self) -> None:
        self._by_config: dict[UpstreamTLSConfig, UpstreamTLS] = {}

    def get(self, config: UpstreamTLSConfig, route: str) -> UpstreamTLS:
        tls = self._by_config.get(config)
        if tls is None:
            if not config.verify:
                logger.warning(
                    "route %r talks TLS to its backends WITHOUT verifying their certificates "
                    "(tls.verify: false): anyone on the path can read and change its traffic",
                    route,
                )
            tls = self._by_config[config] = UpstreamTLS(config)
        return tls
