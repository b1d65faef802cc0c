"""A generator of hostile HTTP/1.1 requests, as bytes, from a seeded ``random.Random``.

Each case is built from a grammar of known trouble (request smuggling
combinations of Content-Length and Transfer-Encoding, obsolete line folding,
bare LF, NUL and control bytes, odd methods and targets, encoded paths,
chunk sizes and extensions), then sometimes mutated at the byte level. The
same seed gives the same cases, so a failure is replayed with ``FUZZ_SEED``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ALPHA = "alpha.fuzz.test"
BETA = "beta.fuzz.test"
HOSTS = [ALPHA, BETA, f"{ALPHA}:80", BETA.upper(), "unknown.fuzz.test", "", f"{ALPHA}.", "[::1]"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT"]
ODD_METHODS = ["get", "G ET", "FOO", "PRI", "M-SEARCH", "GET\x00", "POST\t", "X" * 300, ""]
SEGMENTS = [
    "a",
    "beta",
    "..",
    ".",
    "%2e",
    "%2E%2e",
    "",
    "%2f",
    "%5c",
    "\\",
    "%00",
    "x%41",
    ";x",
    "~",
]
SMUGGLED = f"GET /smuggled HTTP/1.1\r\nHost: {BETA}\r\n\r\n"


@dataclass
class Case:
    """One generated request: the bytes and what the generator meant by them."""

    data: bytes
    note: str
    closes: bool  # sent Connection: close, so the gateway hangs up after answering


def _path(rng: random.Random) -> str:
    first = rng.choice(["beta", "a", "", "alpha"])
    rest = [rng.choice(SEGMENTS) for _ in range(rng.randint(0, 5))]
    path = "/" + "/".join([first, *rest])
    if rng.random() < 0.2:
        path += "?" + rng.choice(["q=1", "q=%2e%2e", "a=b&a=c", "x=" + "y" * 50, "", "#frag"])
    return path


def _target(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.7:
        return _path(rng)
    if roll < 0.85:
        host = rng.choice([ALPHA, BETA, "other.example", "user@" + BETA, BETA + ":99999"])
        return f"{rng.choice(['http', 'https', 'HTTP', 'ftp'])}://{host}{_path(rng)}"
    return rng.choice(["*", f"{ALPHA}:80", "", "a", "//" + BETA + "/x", "/" + "a" * 9000])


def _chunked(rng: random.Random, body: bytes) -> bytes:
    out = b""
    if body:
        size = b"%x" % len(body)
        roll = rng.random()
        if roll < 0.1:
            size = b"0" * 30 + size
        elif roll < 0.2:
            size = rng.choice(
                [b"ffffffffffffffff", b"-1", b"0x5", b" 5", b"5 ", b"fffffffffffffffff0"]
            )
        elif roll < 0.3:
            size += rng.choice([b";ext=1", b";" + b"e" * 5000, b';a="b\\"c"', b"\x00"])
        out += size + rng.choice([b"\r\n"] * 9 + [b"\n"]) + body + b"\r\n"
    out += b"0" + rng.choice([b"", b"", b";last=1"]) + b"\r\n"
    if rng.random() < 0.3:
        out += rng.choice(
            [f"Host: {BETA}\r\n", "X-Auth-Roles: admin\r\n", "Content-Length: 5\r\n"]
        ).encode()
    return out + rng.choice([b"\r\n"] * 9 + [b"", b"\n"])


def _framing(rng: random.Random, body: bytes) -> tuple[list[tuple[str, str]], bytes, str]:
    """Headers that frame ``body`` (or claim to) and the bytes actually sent."""
    length = str(len(body))
    roll = rng.random()
    if roll < 0.3:
        return [("Content-Length", length)], body, "CL"
    if roll < 0.45:
        return [("Transfer-Encoding", "chunked")], _chunked(rng, body), "TE"
    if roll < 0.55:
        te = rng.choice(["chunked", "xchunked", "chunked, identity", " chunked", "Chunked"])
        return [("Content-Length", length), ("Transfer-Encoding", te)], _chunked(rng, body), "CL+TE"
    if roll < 0.62:
        te = rng.choice(["chunked", "identity"])
        return [("Transfer-Encoding", te), ("Content-Length", "3")], _chunked(rng, body), "TE+CL"
    if roll < 0.7:
        value = rng.choice([f"{length}, {length}", f"{length},0", f"+{length}", f"0{length}", "-1"])
        return [("Content-Length", value)], body, f"CL {value!r}"
    if roll < 0.76:
        return [("Content-Length", length), ("Content-Length", "0")], body, "CL twice"
    if roll < 0.82:
        te = rng.choice(["xchunked", "chunked\t", "chunk", "gzip, chunked", "chunked, gzip"])
        return [("Transfer-Encoding", te)], _chunked(rng, body), f"TE {te!r}"
    if roll < 0.86:
        return (
            [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
            (_chunked(rng, body)),
            "TE twice",
        )
    if roll < 0.9:
        return [("Content-Length", "99999999999999999999")], body, "CL huge"
    return [], body, "no framing"


def _extra_headers(rng: random.Random) -> list[tuple[str, str]]:
    pool = [
        ("X-Forwarded-For", "1.2.3.4"),
        ("X_Auth_Roles", "admin"),
        ("X-Auth-Roles", "admin"),
        ("Authorization", "Bearer x"),
        ("Expect", "100-continue"),
        ("Upgrade", rng.choice(["h2c", "websocket"])),
        ("Connection", rng.choice(["Upgrade", "keep-alive, X-Foo", "close, te", "TE"])),
        ("X-Foo", "bar"),
        ("TE", "trailers"),
        ("X-Obs", "folded\r\n continued"),
        ("X-Nul", "a\x00b"),
        ("X-Ctl", "a\x01\x7fb"),
        (" X-Lead", "space"),
        ("X-Trail ", "space"),
        ("X-Empty", ""),
        ("X-Long", "v" * rng.choice([100, 9000, 70000])),
        ("Content-Type", "application/json"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Request-ID", rng.choice(["abc", "a b", "x" * 300])),
    ]
    return rng.sample(pool, rng.randint(0, 4))


def generate(rng: random.Random) -> Case:
    method = rng.choice(METHODS) if rng.random() < 0.9 else rng.choice(ODD_METHODS)
    target = _target(rng)
    version = rng.choice(
        ["HTTP/1.1"] * 12 + ["HTTP/1.0", "HTTP/2.0", "HTTP/1.10", "HTTP/0.9", "http/1.1"]
    )
    headers: list[tuple[str, str]] = []
    host_count = rng.choice([1] * 10 + [0, 2])
    headers += [("Host", rng.choice(HOSTS)) for _ in range(host_count)]
    body = b""
    if rng.random() < 0.5:
        body = rng.choice(
            [b"hello", b"", b"x" * 2000, SMUGGLED.encode(), b"0\r\n\r\n" + SMUGGLED.encode()]
        )
    framing, body_bytes, note = _framing(rng, body) if body or rng.random() < 0.3 else ([], b"", "")
    headers += framing
    headers += _extra_headers(rng)
    rng.shuffle(headers)
    closes = rng.random() < 0.8
    if closes:
        headers.append(("Connection", "close"))
    newline = "\n" if rng.random() < 0.05 else "\r\n"
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in headers]
    if rng.random() < 0.05:  # one bare LF among CRLFs
        index = rng.randrange(len(lines))
        lines[index] += "\n"
        newline_mix = True
    else:
        newline_mix = False
    head = newline.join(lines) + newline * 2
    data = head.encode("latin-1", "replace") + body_bytes
    if rng.random() < 0.1:
        data = _mutate(rng, data)
        note += " mutated"
    if rng.random() < 0.03:
        data = data[: rng.randrange(1, max(2, len(data)))]
        note += " truncated"
    if newline_mix:
        note += " bare-LF"
    return Case(data=data, note=f"{method} {target[:60]} {note}".strip(), closes=closes)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buffer:
            break
        index = rng.randrange(len(buffer))
        roll = rng.random()
        if roll < 0.3:
            buffer[index] = rng.choice(b"\x00\r\n \t:;,\x7f\xff")
        elif roll < 0.6:
            del buffer[index]
        else:
            buffer[index:index] = rng.choice([b"\r\n", b"\n", b" ", b"\x00", b"%", b"chunked"])
    return bytes(buffer)
