"""A WebSocket client for the walkthrough: connect through the gateway with a Host and a token.

``python -m websockets <uri>`` cannot name a Host header other than the URI's
host nor send a token header, which is what routing by Host at the gateway
needs; this does both:

    .venv/bin/python scripts/ws_client.py ws://localhost:8080/ws \\
        --host service1.my-company.com --token "$TOKEN" hello "close 4000 bye"

It prints every message received (the fake backend's greeting first), sends
each argument as a text message, waits for its answer, and prints how the
socket closed. ``--token-in subprotocol`` sends the token as a
``bearer.<jwt>`` subprotocol entry, ``--token-in query`` as ``?access_token=``
(the route must allow either, ``websocket_token_sources``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol


def show(message: str | bytes) -> str:
    return message if isinstance(message, str) else repr(message)


async def run(args: argparse.Namespace) -> int:
    url = urlsplit(args.url)
    headers: list[tuple[str, str]] = []
    subprotocols = [Subprotocol(p) for p in args.subprotocol]
    uri = args.url
    if args.host:
        # the URI names the Host header; host/port below name the socket
        uri = url._replace(netloc=args.host).geturl()
    if args.token:
        if args.token_in == "header":
            headers.append(("Authorization", f"Bearer {args.token}"))
        elif args.token_in == "subprotocol":
            subprotocols.append(Subprotocol(f"bearer.{args.token}"))
        else:
            joiner = "&" if "?" in uri else "?"
            uri += f"{joiner}access_token={quote(args.token)}"
    default_port = 443 if url.scheme == "wss" else 80
    async with connect(
        uri,
        host=url.hostname,
        port=url.port or default_port,
        additional_headers=headers,
        subprotocols=subprotocols or None,
        proxy=None,
    ) as socket:
        print("<", show(await socket.recv()))
        try:
            for text in args.messages:
                print(f"> {text}")
                await socket.send(text)
                print("<", show(await socket.recv()))
        except ConnectionClosed:
            pass
        if not args.messages or socket.close_code is None:
            await socket.close()
        print(f"closed: {socket.close_code} {socket.close_reason!r}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", help="e.g. ws://localhost:8080/ws")
    parser.add_argument("messages", nargs="*", help="text messages to send, one at a time")
    parser.add_argument("--host", help="the Host header (default: the URL's host)")
    parser.add_argument("--token", help="a JWT, e.g. from POST /login")
    parser.add_argument("--token-in", choices=["header", "subprotocol", "query"], default="header")
    parser.add_argument("--subprotocol", action="append", default=[], help="offer this subprotocol")
    sys.exit(asyncio.run(run(parser.parse_intermixed_args())))


if __name__ == "__main__":
    main()
