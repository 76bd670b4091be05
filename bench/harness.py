"""Reusable pieces for benchmarks: server processes, the embedded database, load generation.

A benchmark starts servers with :class:`ServerProcess`, waits for them to answer, drives
them with :func:`run_load` and reports :class:`LoadResult` figures against a baseline
measured in the same run. Nothing here asserts on timing.

Load generation uses ``wrk`` when it is on ``PATH`` (a C tool: little CPU, which matters
on a small machine where the generator competes with the server), otherwise the asyncio
generator in :mod:`bench.loadgen`. Both run as a separate process that can be pinned to a
CPU and niced, and both report the same figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"  # git-ignored
LOG_DIR = RESULTS_DIR / "logs"
DEFAULT_DATA_DIR = BENCH_DIR / ".data"  # the benchmarks' own embedded database

GeneratorName = Literal["auto", "wrk", "python"]


class BenchError(RuntimeError):
    """Something broke (a server did not start, a request failed): not a slow result."""


# --------------------------------------------------------------------------- environment


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mesteri_command(*args: str) -> list[str]:
    """``mesteri ARGS`` from the virtualenv running this Python."""
    script = Path(sys.executable).parent / "mesteri"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "mesteri", *args]


def bench_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for app processes: the embedded database in ``data_dir``, quiet logs.

    ``MESTERI_DATABASE_URL`` is removed so the app starts the embedded PostgreSQL.
    """
    env = dict(os.environ)
    env.pop("MESTERI_DATABASE_URL", None)
    env.update(
        MESTERI_DATA_DIR=str(data_dir.resolve()),
        MESTERI_LOG_LEVEL="WARNING",
        # A whole run fits in one access token; benchmarks log in once.
        MESTERI_ACCESS_TOKEN_MINUTES="240",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def save_results(path: Path, figures: dict[str, Any]) -> None:
    """Print the machine's state and write the figures with it as JSON."""
    machine = machine_info()
    print(f"machine: {machine}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**figures, "machine": machine}, indent=2, default=str))


def machine_info() -> dict[str, Any]:
    load1, load5, _load15 = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": round(load1, 2),
        "loadavg_5m": round(load5, 2),
        "memory_gb": round(_meminfo_kb("MemTotal") / 1024 / 1024, 1),
        "python": sys.version.split()[0],
    }


def git_revision() -> str | None:
    """The commit under test, with ``+dirty`` when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def _meminfo_kb(key: str) -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- processes


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The command name (field 2) may hold spaces; the parent pid follows its ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the embedded PostgreSQL is not one: it detaches)."""
    children = _children_by_parent()
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int, *, include_children: bool = True) -> int:
    """Resident memory (``VmRSS``) of a process, summed over its descendants by default."""
    total = 0
    for member in process_tree(pid) if include_children else [pid]:
        try:
            with open(f"/proc/{member}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue  # exited meanwhile
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process and its living descendants."""
    ticks = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def http_request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, Any]:
    """One request with the standard library; returns the status and the decoded JSON body."""
    data = None if json_body is None else json.dumps(json_body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode(errors="replace")
    return status, body


@dataclass
class ServerProcess:
    """A server run as a subprocess in its own session, its output logged to a file.

    ``stop()`` sends SIGINT to the whole process group (what Ctrl-C in a terminal does), so
    ``make run`` and the CLI shut down the way a developer's Ctrl-C shuts them down.
    """

    name: str
    argv: Sequence[str]
    port: int
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = REPO_ROOT
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name} is not started")
        return self.proc.pid

    def start(self) -> Self:
        if self.log_path is None:
            LOG_DIR.mkdir(parents=True, exist_ok=True)
            self.log_path = LOG_DIR / f"{self.name}.log"
        with open(self.log_path, "wb") as log:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, path: str = "/ready", *, timeout: float = 120.0) -> float:
        """Poll ``path`` until it answers 200; returns the seconds since ``start()``."""
        deadline = self.started_at + timeout
        url = self.base_url + path
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited before it was ready:\n{self.log_tail()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=2) as response,
            ):
                if response.status == 200:
                    return time.perf_counter() - self.started_at
            if time.perf_counter() > deadline:
                raise BenchError(
                    f"{self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def rss_mb(self) -> float:
        return rss_bytes(self.pid) / 1024 / 1024

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, *, timeout: float = 30.0) -> float | None:
        """SIGINT, then SIGTERM, then SIGKILL; returns the seconds a graceful stop took."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        began = time.perf_counter()
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            return time.perf_counter() - began if sig == signal.SIGINT else None
        return None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def api_server(env: Mapping[str, str], *, name: str = "api") -> ServerProcess:
    """``mesteri api`` (one process, no worker) on a free port; not started yet."""
    port = free_port()
    return ServerProcess(name, mesteri_command("api", "--port", str(port)), port, env)


def baseline_server(
    env: Mapping[str, str], data_dir: Path, *, loop: str = "auto", name: str = "baseline"
) -> ServerProcess:
    """The baseline app (:mod:`bench.baseline_app`) on the embedded database of ``data_dir``.

    That database must be running (start the api first). uvicorn's ``auto`` loop and http
    are uvloop and httptools when installed (``uvicorn[standard]`` installs them).
    """
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", loop, "--no-access-log", "--log-level", "warning"]
    env = {**env, "BENCH_DATABASE_URL": embedded_database_url(data_dir)}
    return ServerProcess(name, argv, port, env)


# --------------------------------------------------------------------------- embedded database


def pgdata_dir(data_dir: Path) -> Path:
    """Where ``mesteri`` keeps the embedded PostgreSQL of ``MESTERI_DATA_DIR``."""
    return (data_dir / "postgres").resolve()


def embedded_database_url(data_dir: Path, database: str = "mesteri") -> str:
    """The URL of the embedded server running in ``data_dir`` (read from ``postmaster.pid``).

    This does not attach to the server, so it never keeps it running after the app stops.
    """
    pid_file = pgdata_dir(data_dir) / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError as exc:
        raise BenchError(f"no PostgreSQL is running in {pgdata_dir(data_dir)}") from exc
    port, socket_dir = lines[3].strip(), lines[4].strip()
    url = f"postgresql://postgres:@/{database}?host={socket_dir}"
    return url if port in ("", "5432") else f"{url}&port={port}"


def postmaster_pid(data_dir: Path) -> int:
    """The pid of the embedded server's main process (its backends are its children)."""
    try:
        return int((pgdata_dir(data_dir) / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError) as exc:
        raise BenchError(f"no PostgreSQL is running in {pgdata_dir(data_dir)}") from exc


def postgres_pids(data_dir: Path) -> list[int]:
    """PostgreSQL server processes running on ``data_dir``'s cluster."""
    pgdata = str(pgdata_dir(data_dir))
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"postgres") and pgdata.encode() in argv:
            found.append(int(entry.name))
    return found


def wait_postgres_stopped(data_dir: Path, *, timeout: float = 20.0) -> list[int]:
    """Wait for the embedded server to exit; returns the pids still running (empty: stopped)."""
    deadline = time.monotonic() + timeout
    while (pids := postgres_pids(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return pids


# --------------------------------------------------------------------------- load generation


@dataclass(frozen=True)
class LoadResult:
    """One load-generator run. Latencies are per request, in milliseconds."""

    label: str
    generator: str
    url: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # connection errors, timeouts and non-2xx/3xx answers
    non_2xx: int
    # CPU use during the measured run, per watched process and the generator (100 = 1 CPU)
    cpu_pct: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LoadSummary:
    """Medians over the rounds of one scenario."""

    label: str
    rounds: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    cpu_pct: dict[str, float]
    runs: tuple[LoadResult, ...]

    @classmethod
    def of(cls, label: str, runs: Sequence[LoadResult]) -> LoadSummary:
        if not runs:
            raise ValueError("no runs to summarise")
        return cls(
            label=label,
            rounds=len(runs),
            rps=statistics.median(r.rps for r in runs),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p90_ms=statistics.median(r.p90_ms for r in runs),
            p99_ms=statistics.median(r.p99_ms for r in runs),
            errors=sum(r.errors for r in runs),
            cpu_pct={
                name: statistics.median(r.cpu_pct.get(name, 0.0) for r in runs)
                for name in runs[0].cpu_pct
            },
            runs=tuple(runs),
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["runs"] = [run.as_dict() for run in self.runs]
        return data


def resolve_generator(preferred: GeneratorName = "auto") -> str:
    """``wrk`` if asked for or found on ``PATH``, else the Python generator."""
    if preferred == "wrk" and shutil.which("wrk") is None:
        raise BenchError("wrk is not on PATH (apt-get install wrk), or use --generator python")
    if preferred == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return preferred


def generator_description(name: str) -> str:
    if name == "wrk":
        try:
            out = subprocess.run(
                ["wrk", "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return "wrk"
        match = re.search(r"wrk\s+(\S+)", out)
        return f"wrk {match.group(1)}" if match else "wrk"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "python asyncio (bench.loadgen)"
    return "python asyncio + uvloop (bench.loadgen)"


def run_load(
    url: str,
    *,
    label: str = "",
    connections: int = 64,
    duration: float = 10.0,
    warmup: float = 2.0,
    headers: Mapping[str, str] | None = None,
    generator: GeneratorName = "auto",
    threads: int = 1,
    cpu: int | None = None,
    nice: int = 0,
    watch: Mapping[str, int] | None = None,
) -> LoadResult:
    """Drive ``GET url`` with ``connections`` keep-alive connections for ``duration`` seconds.

    The first ``warmup`` seconds are not measured. ``cpu`` pins the generator to one CPU and
    ``nice`` lowers its priority. ``watch`` names processes (with their descendants) whose
    CPU use during the measured run is reported, like the generator's own, in
    ``LoadResult.cpu_pct`` (100 = one CPU busy). Errors are counted, never raised; a
    generator that cannot run at all raises :class:`BenchError`.
    """
    spec = _LoadSpec(
        url=url,
        connections=connections,
        duration=duration,
        warmup=warmup,
        headers=dict(headers or {}),
        threads=threads,
        cpu=cpu,
        nice=nice,
        watch=dict(watch or {}),
    )
    name = resolve_generator(generator)
    figures, cpu_pct = _run_wrk(spec) if name == "wrk" else _run_python(spec)
    seconds = figures["duration_s"] or 1e-9
    return LoadResult(
        label=label or url,
        generator=name,
        url=url,
        connections=connections,
        duration_s=round(seconds, 3),
        requests=figures["requests"],
        rps=round(figures["requests"] / seconds, 1),
        p50_ms=round(figures["p50_ms"], 3),
        p90_ms=round(figures["p90_ms"], 3),
        p99_ms=round(figures["p99_ms"], 3),
        max_ms=round(figures["max_ms"], 3),
        errors=figures["errors"],
        non_2xx=figures["non_2xx"],
        cpu_pct=cpu_pct,
    )


@dataclass(frozen=True)
class _LoadSpec:
    url: str
    connections: int
    duration: float
    warmup: float
    headers: dict[str, str]
    threads: int
    cpu: int | None
    nice: int
    watch: dict[str, int]


def _preexec(cpu: int | None, nice: int) -> Callable[[], None] | None:
    if cpu is None and nice == 0:
        return None

    def apply() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if nice:
            os.nice(nice)

    return apply


def children_cpu_seconds() -> float:
    """CPU used by this process's reaped children (a load generator, pgbench)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_generator(
    spec: _LoadSpec, argv: Sequence[str], timeout: float, *, measure: bool
) -> tuple[str, dict[str, float]]:
    """Run the generator; with ``measure``, also the CPU use of it and the watched processes."""
    before = {name: cpu_seconds(pid) for name, pid in spec.watch.items()} if measure else {}
    generator_before, began = children_cpu_seconds(), time.perf_counter()
    try:
        done = subprocess.run(
            list(argv),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_preexec(spec.cpu, spec.nice),  # the harness runs no threads
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"load generator did not finish within {timeout:.0f} s") from exc
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise BenchError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu_pct: dict[str, float] = {}
    if measure:
        for name, pid in spec.watch.items():
            cpu_pct[name] = round(100 * (cpu_seconds(pid) - before[name]) / wall, 1)
        cpu_pct["generator"] = round(100 * (children_cpu_seconds() - generator_before) / wall, 1)
    return done.stdout, cpu_pct


# wrk calls done() once at the end: print the exact figures as one JSON line.
_WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _run_wrk(spec: _LoadSpec) -> tuple[dict[str, Any], dict[str, float]]:
    """Warm up with one wrk run, measure with a second (wrk takes whole seconds)."""
    base = ["wrk", f"-t{max(1, min(spec.threads, spec.connections))}", f"-c{spec.connections}"]
    base += ["--timeout", "10s"]
    for key, value in spec.headers.items():
        base += ["-H", f"{key}: {value}"]
    if spec.warmup > 0:
        warmup = [*base, f"-d{max(1, round(spec.warmup))}s", spec.url]
        _run_generator(spec, warmup, spec.warmup + 30, measure=False)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-") as script:
        script.write(_WRK_REPORT)
        script.flush()
        measured = [*base, f"-d{max(1, round(spec.duration))}s", "-s", script.name, spec.url]
        out, cpu_pct = _run_generator(spec, measured, spec.duration + 30, measure=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no figures:\n{out[-2000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    figures = {
        "requests": raw["requests"],
        "duration_s": raw["duration_us"] / 1e6,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": sum(raw[k] for k in ("connect", "read", "write", "status", "timeout")),
        "non_2xx": raw["status"],
    }
    return figures, cpu_pct


def _run_python(spec: _LoadSpec) -> tuple[dict[str, Any], dict[str, float]]:
    """One run of :mod:`bench.loadgen`; it warms up on the same connections it measures."""
    argv = [sys.executable, "-m", "bench.loadgen", spec.url]
    argv += ["--connections", str(spec.connections), "--duration", str(spec.duration)]
    argv += ["--warmup", str(spec.warmup)]
    for key, value in spec.headers.items():
        argv += ["--header", f"{key}: {value}"]
    out, cpu_pct = _run_generator(spec, argv, spec.warmup + spec.duration + 60, measure=True)
    figures: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return figures, cpu_pct


# --------------------------------------------------------------------------- small helpers


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
