"""``mesteri api`` with two probes, for ``python -m bench.realtime --instrument``.

    python -m bench.realtime_api api --port 8001      # BENCH_PROBE_FILE=/path/probe.log

The app is unchanged; this only watches it from inside its process:

- **event-loop lag**: a task sleeps 5 ms in a loop; how much later it wakes is the time the
  loop spent running other callbacks (or the process was not scheduled) — every request
  and every WebSocket frame of the process waits that long too;
- **garbage collections**: the duration of each one, by generation (``gc.callbacks``).

Lines ``<wall ns> lag <ms>`` (lags over 2 ms only, with a count of all wake-ups) and
``<wall ns> gc<generation> <ms>`` are appended to ``BENCH_PROBE_FILE`` by a thread once a
second; :mod:`bench.realtime` reads those of each measured window.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import sys
import threading
import time
from typing import Any

_lines: list[str] = []
_lock = threading.Lock()
_gc_began = [0]
_wakeups = [0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_began[0] = time.perf_counter_ns()
    elif _gc_began[0]:
        ms = (time.perf_counter_ns() - _gc_began[0]) / 1e6
        with _lock:
            _lines.append(f"{time.time_ns()} gc{info.get('generation', '?')} {ms:.3f}\n")


async def _watch_loop() -> None:
    while True:
        began = time.perf_counter_ns()
        await asyncio.sleep(0.005)
        lag = (time.perf_counter_ns() - began) / 1e6 - 5.0
        _wakeups[0] += 1
        if lag > 2.0:
            with _lock:
                _lines.append(f"{time.time_ns()} lag {lag:.3f}\n")


def _flush(path: str) -> None:
    while True:
        time.sleep(1.0)
        with _lock:
            lines, _lines[:] = list(_lines), []
            wakeups, _wakeups[0] = _wakeups[0], 0
        lines.append(f"{time.time_ns()} wakeups {wakeups}\n")
        with open(path, "a") as out:
            out.writelines(lines)


def main() -> None:
    import uvicorn

    path = os.environ["BENCH_PROBE_FILE"]
    open(path, "w").close()
    gc.callbacks.append(_on_gc)
    serve = uvicorn.Server.serve

    async def serve_watched(self: uvicorn.Server, sockets: Any = None) -> None:
        watcher = asyncio.get_running_loop().create_task(_watch_loop())
        try:
            await serve(self, sockets)
        finally:
            watcher.cancel()

    uvicorn.Server.serve = serve_watched  # type: ignore[method-assign]
    threading.Thread(target=_flush, args=(path,), daemon=True, name="bench-probe").start()
    from mesteri.cli import cli

    sys.argv = ["mesteri", *sys.argv[1:]]
    cli()


def read(path: str, since_ns: int, until_ns: int) -> dict[str, Any]:
    """The figures of one window: loop lag (p99 is over all wake-ups) and GC pauses."""
    lags: list[float] = []
    wakeups = 0
    gcs: dict[str, list[float]] = {}
    try:
        with open(path) as probe:
            for line in probe:
                parts = line.split()
                if len(parts) != 3 or not since_ns <= int(parts[0]) <= until_ns:
                    continue
                if parts[1] == "lag":
                    lags.append(float(parts[2]))
                elif parts[1] == "wakeups":
                    wakeups += int(parts[2])
                elif parts[1].startswith("gc"):
                    gcs.setdefault(parts[1], []).append(float(parts[2]))
    except OSError:
        return {}
    lags.sort()
    above = wakeups - math.ceil(0.99 * wakeups)  # wake-ups later than the p99 one
    # the p99 of all wake-ups when it is one of the recorded (over 2 ms), else "≤ 2"
    p99 = lags[len(lags) - 1 - above] if len(lags) > above else 2.0
    return {
        "wakeups": wakeups,
        "loop_lag_p99_ms": round(p99, 2),
        "loop_lag_max_ms": round(lags[-1], 2) if lags else 0.0,
        "loop_lag_over_50ms": sum(1 for x in lags if x > 50),
        "loop_stalled_s": round(sum(lags) / 1000, 2),
        "gc": {
            gen: {"count": len(v), "total_ms": round(sum(v), 1), "max_ms": round(max(v), 1)}
            for gen, v in sorted(gcs.items())
        },
    }


if __name__ == "__main__":
    main()
