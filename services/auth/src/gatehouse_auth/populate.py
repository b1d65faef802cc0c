"""``gatehouse-populate``: create N accounts through the auth API, concurrently and idempotently.

Accounts are numbered (``<prefix>000001`` with ``<prefix>000001@<domain>``),
so a second run asks for the same ones and every 409 counts as skipped, not
failed. Transport errors and 5xx answers are retried a few times with a
short back-off. ``--csv`` writes username, email and password of every
account that exists after the run (created or skipped), for load tests.
Exits 1 when any account failed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

RETRIES = 2
RETRY_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class Credentials:
    username: str
    email: str
    password: str


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatehouse-populate",
        description="Create accounts through the Gatehouse auth API (existing ones are skipped).",
    )
    parser.add_argument("--count", type=int, default=100, help="accounts to ensure (default 100)")
    parser.add_argument(
        "--auth-url", default="http://127.0.0.1:8001", help="auth service (or gateway) base URL"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--prefix", default="user", help="username prefix (default user)")
    parser.add_argument("--domain", default="example.com", help="email domain")
    parser.add_argument(
        "--password", default="gatehouse-populate", help="password of every account (8-72 bytes)"
    )
    parser.add_argument("--start", type=int, default=1, help="first account number")
    parser.add_argument("--csv", type=Path, help="write username,email,password of the accounts")
    parser.add_argument(
        "--retries", type=int, default=RETRIES, help="retries of a 5xx, 429 or connection error"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def accounts(args: argparse.Namespace) -> list[Credentials]:
    return [
        Credentials(f"{args.prefix}{n:06d}", f"{args.prefix}{n:06d}@{args.domain}", args.password)
        for n in range(args.start, args.start + args.count)
    ]


async def _create(client: httpx.AsyncClient, account: Credentials, retries: int) -> tuple[str, str]:
    """("created" | "skipped" | "failed", reason)."""
    body = {"username": account.username, "email": account.email, "password": account.password}
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(RETRY_BACKOFF_SECONDS * attempt)
        try:
            response = await client.post("/account", json=body)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == httpx.codes.CREATED:
                return "created", ""
            if response.status_code == httpx.codes.CONFLICT:
                return "skipped", ""
            reason = f"{response.status_code} {response.text[:200]}"
            if response.status_code < 500 and response.status_code != 429:
                break
    return "failed", reason


async def populate(
    todo: Sequence[Credentials],
    *,
    auth_url: str,
    concurrency: int,
    timeout: float,
    retries: int = RETRIES,
    progress: bool = True,
) -> tuple[Counter[str], list[Credentials], list[str]]:
    """Create ``todo``; returns the counts, the accounts that exist, and failure reasons."""
    counts: Counter[str] = Counter(created=0, skipped=0, failed=0)
    existing: list[Credentials] = []
    failures: list[str] = []
    queue: asyncio.Queue[Credentials] = asyncio.Queue()
    for account in todo:
        queue.put_nowait(account)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    bar = tqdm(total=len(todo), unit="account", disable=not progress, file=sys.stderr)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                account = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            outcome, reason = await _create(client, account, retries)
            counts[outcome] += 1
            if outcome == "failed":
                failures.append(f"{account.email}: {reason}")
            else:
                existing.append(account)
            bar.update(1)
            bar.set_postfix(
                created=counts["created"], skipped=counts["skipped"], failed=counts["failed"]
            )

    async with httpx.AsyncClient(base_url=auth_url, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(max(1, concurrency))))
    bar.close()
    existing.sort(key=lambda c: c.username)
    return counts, existing, failures


def write_csv(path: Path, rows: Sequence[Credentials]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["username", "email", "password"])
        writer.writerows((c.username, c.email, c.password) for c in rows)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.count < 0 or args.concurrency < 1:
        sys.exit("--count must be >= 0 and --concurrency >= 1")
    if not 8 <= len(args.password.encode()) <= 72:
        sys.exit("--password must be 8 to 72 bytes")
    counts, existing, failures = asyncio.run(
        populate(
            accounts(args),
            auth_url=args.auth_url.rstrip("/"),
            concurrency=args.concurrency,
            timeout=args.timeout,
            retries=max(0, args.retries),
            progress=not args.no_progress,
        )
    )
    for failure in failures[:20]:
        print(f"failed: {failure}", file=sys.stderr)
    if any(": 429 " in failure for failure in failures):
        print(
            "the auth service limits sign-ups per client address; for a bulk run set "
            "GATEHOUSE_AUTH_SIGNUP_RATE_LIMIT_PER_CLIENT=0 on it",
            file=sys.stderr,
        )
    if len(failures) > 20:
        print(f"... and {len(failures) - 20} more failures", file=sys.stderr)
    if args.csv:
        write_csv(args.csv, existing)
    print(f"created={counts['created']} skipped={counts['skipped']} failed={counts['failed']}")
    sys.exit(1 if counts["failed"] else 0)


if __name__ == "__main__":
    main()
