"""A small HTTP/1.1 load generator, used when ``wrk`` is not installed.

``python -m bench.loadgen URL --connections 64 --duration 10 --warmup 2 [--header 'K: V']``

Each connection is one keep-alive socket sending ``GET`` requests back to back (raw bytes
over asyncio streams, on uvloop when installed). Requests started during the warm-up are
not measured. Prints one JSON line with the same figures as the ``wrk`` path of
:func:`bench.harness.run_load`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.harness import percentile

_HEAD_END = b"\r\n\r\n"


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, measured requests only
    errors: int = 0
    non_2xx: int = 0


def build_request(url: str, headers: Sequence[str]) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"only http:// URLs are supported, not {url!r}")
    port = parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *headers, "", ""]
    return parts.hostname, port, "\r\n".join(lines).encode("latin-1")


def _header_value(head_lower: bytes, name: bytes) -> bytes | None:
    start = head_lower.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    return head_lower[start : head_lower.find(b"\r\n", start)].strip()


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return


async def _connection(
    host: str, port: int, request: bytes, measure_from: float, end: float, stats: Stats
) -> None:
    clock = time.perf_counter
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while (started := clock()) < end:
        measured = started >= measure_from
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            head = await reader.readuntil(_HEAD_END)
            status = int(head[9:12])
            lower = head.lower()
            length = _header_value(lower, b"content-length")
            if length is not None:
                await reader.readexactly(int(length))
            elif _header_value(lower, b"transfer-encoding") == b"chunked":
                await _read_chunked(reader)
            if _header_value(lower, b"connection") == b"close":
                writer.close()
                reader = writer = None
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            if writer is not None:
                writer.close()
            reader = writer = None
            if measured:
                stats.errors += 1
            await asyncio.sleep(0.01)
            continue
        if measured:
            stats.latencies.append(clock() - started)
            if not 200 <= status < 400:
                stats.non_2xx += 1
    if writer is not None:
        writer.close()


async def generate(
    url: str, *, connections: int, duration: float, warmup: float, headers: Sequence[str]
) -> dict[str, Any]:
    host, port, request = build_request(url, headers)
    stats = Stats()
    measure_from = time.perf_counter() + warmup
    end = measure_from + duration
    tasks = [
        asyncio.create_task(_connection(host, port, request, measure_from, end, stats))
        for _ in range(connections)
    ]
    # A request still hanging 10 s after the end is abandoned (and counted as an error).
    _done, pending = await asyncio.wait(tasks, timeout=warmup + duration + 10)
    for task in pending:
        task.cancel()
    stats.errors += len(pending)
    latencies = sorted(stats.latencies)
    ms = 1000.0
    return {
        "requests": len(latencies),
        "duration_s": duration,
        "p50_ms": percentile(latencies, 50) * ms,
        "p90_ms": percentile(latencies, 90) * ms,
        "p99_ms": percentile(latencies, 99) * ms,
        "max_ms": (latencies[-1] if latencies else 0.0) * ms,
        "errors": stats.errors + stats.non_2xx,
        "non_2xx": stats.non_2xx,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args(argv)
    coro = generate(
        args.url,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        headers=args.header,
    )
    try:
        import uvloop
    except ImportError:
        figures = asyncio.run(coro)
    else:
        figures = uvloop.run(coro)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
