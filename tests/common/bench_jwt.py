"""Micro-benchmark of gatehouse_common.jwt (a benchmark, not a test: pytest does not collect it).

Run: ``PYTHONPATH=tests .venv/bin/python -m common.bench_jwt``

Prints CPU microseconds per call (process time, so other load on the machine
inflates the figures less than wall time would) for the paths the gateway
takes: a cached token, the Authorization header parse, and a first sight of
a token (signature and claims checked) for EdDSA and RS256. The JWKS is
served over real HTTP on 127.0.0.1 by the tests' JWKS host.
"""

from __future__ import annotations

import asyncio
import time

from common.jwt_factories import AUDIENCE, ISSUER, JWKSHost, ed25519_key, make_claims, rsa_key

from gatehouse_common.jwt import JWKSClient, TokenVerifier, bearer_token

HITS = 200_000
MISSES = 2_000


def per_call(started: float, calls: int) -> str:
    return f"{(time.process_time() - started) / calls * 1e6:8.2f} us"


async def main() -> None:
    host = JWKSHost().start()
    endpoint = host.endpoint()
    ed, rs = ed25519_key("ed"), rsa_key("rs")
    endpoint.publish(ed, rs)
    jwks = JWKSClient(endpoint.url)
    verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, cache_size=2 * MISSES + 1)
    try:
        await jwks.refresh()
        token = ed.sign(make_claims())
        await verifier.verify(token)
        started = time.process_time()
        for _ in range(HITS):
            await verifier.verify(token)
        print(f"verify, cached token      {per_call(started, HITS)}")

        header = b"Bearer " + token.encode()
        started = time.process_time()
        for _ in range(HITS):
            bearer_token(header)
        print(f"bearer_token              {per_call(started, HITS)}")

        for key in (ed, rs):
            tokens = [key.sign(make_claims(sub=str(i))) for i in range(MISSES)]
            started = time.process_time()
            for fresh in tokens:
                await verifier.verify(fresh)
            print(f"verify, first sight {key.alg:6}{per_call(started, MISSES)}")
    finally:
        await jwks.aclose()
        host.stop()


if __name__ == "__main__":
    asyncio.run(main())
