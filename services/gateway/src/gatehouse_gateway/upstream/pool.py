"""The one pooled aiohttp session every proxied request goes through.

Created in the lifespan (never at import) and closed there. Keep-alive
connections are reused across requests and routes; the connector's limit
bounds sockets to all backends together. Bodies pass through untouched:
no automatic decompression, and none of the headers aiohttp would otherwise
invent (User-Agent, Accept-Encoding, Content-Type).
"""

from __future__ import annotations

import aiohttp

from gatehouse_gateway.settings import GatewaySettings


def create_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_connection_limit,
        limit_per_host=0,
        keepalive_timeout=settings.upstream_keepalive,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )
