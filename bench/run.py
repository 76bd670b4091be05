"""The Mesteri benchmark: the app against a minimal baseline, measured in the same run.

``python -m bench.run`` (``make bench``; ``make bench BENCH_ARGS="--rounds 3"``) measures

* the cold start of ``mesteri run`` and of ``make run`` with an existing data directory,
  from launch to ``/ready`` answering 200 (then stops them with Ctrl-C, SIGINT, and checks
  that the embedded PostgreSQL stopped too);
* the idle memory of ``mesteri api`` (one process, no worker);
* authenticated ``GET /api/v1/me`` against the baseline ``GET /baseline/{id}`` (one
  primary-key lookup with FastAPI + asyncpg, :mod:`bench.baseline_app`), alternating
  baseline and app for some rounds and reporting medians.

Goals (informational: the benchmark prints them, it never fails on timing): the app
reaches at least 50 % of the baseline's requests per second; the idle api stays within
150 MB RSS. The figures also go to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench import harness
from bench.harness import BenchError, GeneratorName, LoadResult, LoadSummary, ServerProcess

RATIO_GOAL = 0.50  # app req/s as a share of the baseline's
RSS_GOAL_MB = 150.0  # api process at idle
DEMO_PRO = "pro@demo.mesteri.ro"


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    connections: int
    rounds: int
    skip_cold_start: bool
    cold_start_rounds: int
    data_dir: Path
    generator: GeneratorName
    threads: int
    generator_cpu: int | None
    generator_nice: int
    baseline_loop: str
    idle_seconds: float
    output: Path


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark Mesteri against a minimal FastAPI + asyncpg baseline.",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per load run (default 10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds before each load run (default 2)",
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="concurrent keep-alive connections (default 64)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="baseline/app alternations; medians are reported (default 2)",
    )
    parser.add_argument(
        "--skip-cold-start", action="store_true", help="do not time `mesteri run` and `make run`"
    )
    parser.add_argument(
        "--cold-start-rounds",
        type=int,
        default=2,
        help="starts of `mesteri run` and of `make run` each; medians (default 2)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=harness.DEFAULT_DATA_DIR,
        help="MESTERI_DATA_DIR of the benchmark (default bench/.data)",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when on PATH, else Python (default auto)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument(
        "--generator-cpu",
        type=int,
        default=None,
        help="pin the load generator to this CPU (default: not pinned)",
    )
    parser.add_argument(
        "--generator-nice",
        type=int,
        default=0,
        help="niceness added to the load generator (default 0)",
    )
    parser.add_argument(
        "--baseline-loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="uvicorn --loop of the baseline (default auto)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=2.0,
        help="idle time before memory is read (default 2)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=harness.RESULTS_DIR / "latest.json",
        help="where the JSON results go (default bench/results/latest.json)",
    )
    args = parser.parse_args(argv)
    if (
        min(args.connections, args.rounds, args.cold_start_rounds) < 1
        or args.duration <= 0
        or args.warmup < 0
    ):
        parser.error("counts need at least 1, --duration more than 0")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        rounds=args.rounds,
        skip_cold_start=args.skip_cold_start,
        cold_start_rounds=args.cold_start_rounds,
        data_dir=args.data_dir.resolve(),
        generator=args.generator,
        threads=args.threads,
        generator_cpu=args.generator_cpu,
        generator_nice=args.generator_nice,
        baseline_loop=args.baseline_loop,
        idle_seconds=args.idle_seconds,
        output=args.output,
    )


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- data directory


def prepare_data_dir(data_dir: Path, env: dict[str, str]) -> bool:
    """Create the benchmark's database with the demo data once; True if it was created now."""
    if (harness.pgdata_dir(data_dir) / "PG_VERSION").exists():
        return False
    data_dir.mkdir(parents=True, exist_ok=True)
    if data_dir.is_relative_to(harness.REPO_ROOT):
        (data_dir / ".gitignore").write_text("# the benchmarks' embedded database\n*\n")
    say(f"Creating the benchmark database in {data_dir} (migrations and demo data) …")
    try:
        done = subprocess.run(
            harness.mesteri_command("seed-demo"),
            cwd=harness.REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError("`mesteri seed-demo` did not finish within 300 s") from exc
    if done.returncode != 0:
        raise BenchError(f"`mesteri seed-demo` failed:\n{done.stdout}{done.stderr}")
    if leftover := harness.wait_postgres_stopped(data_dir):
        raise BenchError(f"`mesteri seed-demo` left PostgreSQL running (pids {leftover})")
    return True


# --------------------------------------------------------------------------- cold start

_READY_LINE = re.compile(r"Ready to serve after ([0-9.]+) ?s")


def timed_start(server: ServerProcess, data_dir: Path) -> dict[str, Any]:
    """Launch → ``/ready`` 200, then Ctrl-C; checks the embedded PostgreSQL stopped."""
    server.start()
    try:
        ready_s = server.wait_ready(timeout=300)
    finally:
        stop_s = server.stop()
    leftover = harness.wait_postgres_stopped(data_dir)
    said = _READY_LINE.search(server.log_text())
    return {
        "command": " ".join(server.argv),
        "ready_s": round(ready_s, 3),
        "cli_ready_to_serve_s": float(said.group(1)) if said else None,
        "stop_s": None if stop_s is None else round(stop_s, 3),
        "postgres_stopped": not leftover,
        "leftover_postgres_pids": leftover,
    }


@dataclass(frozen=True)
class MakeRun:
    """How to launch ``make run``, or why it is not timed."""

    argv: list[str] | None
    stale_stamp: str | None = None
    skipped: str | None = None


def make_run_command(env: dict[str, str]) -> MakeRun:
    """The ``make run`` command line, keeping make away from the shared virtualenv.

    With an out-of-date install stamp (``pyproject.toml`` or ``requirements.lock`` changed
    since the last ``make install``) ``make run`` would reinstall first: not a start-up time.
    ``make -o STAMP`` then treats the stamp as up to date, so make does all its usual work
    but the install.
    """
    if shutil.which("make") is None:
        return MakeRun(None, skipped="make is not installed")
    base = ["make", "--no-print-directory"]
    question = subprocess.run(
        [*base, "-q", "install"], cwd=harness.REPO_ROOT, env=env, capture_output=True, timeout=60
    )
    if question.returncode == 0:
        return MakeRun([*base, "run"])
    dry_run = subprocess.run(
        [*base, "-n", "install"],
        cwd=harness.REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    stamp = re.search(r"touch (\S+/\.installed-\S+)", dry_run.stdout)
    if stamp is None:
        return MakeRun(None, skipped="the install stamp is out of date: run `make install`")
    return MakeRun([*base, "-o", stamp.group(1), "run"], stale_stamp=stamp.group(1))


def _median_start(samples: list[dict[str, Any]]) -> dict[str, Any]:
    said = [x["cli_ready_to_serve_s"] for x in samples if x["cli_ready_to_serve_s"] is not None]
    return {
        "command": samples[0]["command"],
        "ready_s": round(statistics.median(x["ready_s"] for x in samples), 3),
        "cli_ready_to_serve_s": statistics.median(said) if said else None,
        "postgres_stopped": all(x["postgres_stopped"] for x in samples),
        "leftover_postgres_pids": sorted({p for x in samples for p in x["leftover_postgres_pids"]}),
        "samples": samples,
    }


def measure_cold_start(opts: Options, env: dict[str, str]) -> dict[str, Any]:
    """``mesteri run`` and ``make run`` alternately, ``--cold-start-rounds`` times each."""
    if running := harness.postgres_pids(opts.data_dir):
        raise BenchError(
            f"a PostgreSQL already runs on {opts.data_dir} (pids {running}); stop it first"
        )
    make_run = make_run_command(env)
    if make_run.argv is None:
        say(f"`make run` is not timed: {make_run.skipped}")
    elif make_run.stale_stamp:
        say(f"The install stamp is stale: `make -o {make_run.stale_stamp} run` skips the install.")
    commands = {"mesteri_run": ["mesteri", "run"], "make_run": make_run.argv}
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in commands}
    for round_no in range(1, opts.cold_start_rounds + 1):
        for key, argv in commands.items():
            if argv is None:
                continue
            port = harness.free_port()
            if key == "mesteri_run":
                argv = harness.mesteri_command("run", "--port", str(port))
            server = ServerProcess(
                f"cold-start-{key.replace('_', '-')}", argv, port, {**env, "PORT": str(port)}
            )
            sample = timed_start(server, opts.data_dir)
            samples[key].append(sample)
            say(
                f"  cold start {round_no}/{opts.cold_start_rounds} {key.replace('_', ' '):<12} "
                f"ready after {sample['ready_s']:.2f} s, stopped after {sample['stop_s']} s"
            )
    cli = _median_start(samples["mesteri_run"])
    result: dict[str, Any] = {"mesteri_run": cli, "make_run": None, "make_run_skipped": None}
    if samples["make_run"]:
        make = _median_start(samples["make_run"])
        make["install_stamp_stale"] = make_run.stale_stamp is not None
        make["added_by_make_s"] = round(make["ready_s"] - cli["ready_s"], 3)
        result["make_run"] = make
    else:
        result["make_run_skipped"] = make_run.skipped
    return result


# --------------------------------------------------------------------------- throughput


def login(base_url: str, password: str) -> tuple[str, str]:
    """The demo pro's access token and user id (one login, reused: logins are rate limited)."""
    status, body = harness.http_request(
        "POST", base_url + "/api/v1/auth/login", json_body={"login": DEMO_PRO, "password": password}
    )
    if status != 200:
        raise BenchError(
            f"login as {DEMO_PRO} answered {status}: {body}\n"
            "(is MESTERI_DEMO_PASSWORD the one the data directory was seeded with?)"
        )
    return body["tokens"]["access_token"], body["user"]["id"]


def expect_ok(url: str, headers: dict[str, str]) -> None:
    status, body = harness.http_request("GET", url, headers=headers)
    if status != 200:
        raise BenchError(f"GET {url} answered {status}: {body}")


def measure_throughput(opts: Options, env: dict[str, str]) -> dict[str, Any]:
    password = env.get("MESTERI_DEMO_PASSWORD", "demo-Mesteri-2026")
    with ExitStack() as running:
        api = harness.api_server(env)
        say("Starting `mesteri api` (one process, no worker) …")
        api.start()
        running.callback(api.stop)
        api_ready_s = api.wait_ready(timeout=300)
        time.sleep(opts.idle_seconds)
        api_idle_mb = api.rss_mb()
        say(f"  ready after {api_ready_s:.2f} s; idle RSS {api_idle_mb:.1f} MB")

        token, user_id = login(api.base_url, password)
        baseline = harness.baseline_server(env, opts.data_dir, loop=opts.baseline_loop)
        say(f"Starting the baseline (uvicorn --loop {opts.baseline_loop}) …")
        baseline.start()
        running.callback(baseline.stop)
        baseline.wait_ready(timeout=120)
        time.sleep(opts.idle_seconds)
        baseline_idle_mb = baseline.rss_mb()

        scenarios: dict[str, tuple[str, str, dict[str, str]]] = {
            "baseline": (
                "baseline GET /baseline/{id}",
                f"{baseline.base_url}/baseline/{user_id}",
                {},
            ),
            "app": (
                "app GET /api/v1/me (bearer)",
                f"{api.base_url}/api/v1/me",
                {"Authorization": f"Bearer {token}"},
            ),
        }
        for _label, url, headers in scenarios.values():
            expect_ok(url, headers)

        runs: dict[str, list[LoadResult]] = {key: [] for key in scenarios}
        postgres = harness.postmaster_pid(opts.data_dir)
        servers = {"baseline": baseline.pid, "app": api.pid}
        for round_no in range(1, opts.rounds + 1):
            for key, (label, url, headers) in scenarios.items():
                result = harness.run_load(
                    url,
                    label=label,
                    connections=opts.connections,
                    duration=opts.duration,
                    warmup=opts.warmup,
                    headers=headers,
                    generator=opts.generator,
                    threads=opts.threads,
                    cpu=opts.generator_cpu,
                    nice=opts.generator_nice,
                    watch={"server": servers[key], "postgres": postgres},
                )
                runs[key].append(result)
                say(
                    f"  round {round_no}/{opts.rounds} {key:<8} {result.rps:>9.1f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                    f"errors {result.errors}  CPU {_cpu_text(result.cpu_pct)}"
                )

        api_loaded_mb = api.rss_mb()
        baseline_loaded_mb = baseline.rss_mb()
    leftover = harness.wait_postgres_stopped(opts.data_dir)
    summaries = {key: LoadSummary.of(scenarios[key][0], results) for key, results in runs.items()}
    return {
        "summaries": summaries,
        "api_ready_s": round(api_ready_s, 3),
        "memory": {
            "api_idle_rss_mb": round(api_idle_mb, 1),
            "api_after_load_rss_mb": round(api_loaded_mb, 1),
            "baseline_idle_rss_mb": round(baseline_idle_mb, 1),
            "baseline_after_load_rss_mb": round(baseline_loaded_mb, 1),
            "goal_mb": RSS_GOAL_MB,
            "meets_goal": api_idle_mb <= RSS_GOAL_MB,
        },
        "postgres_stopped_after_api": not leftover,
    }


# --------------------------------------------------------------------------- report


def build_report(
    opts: Options, started: dict[str, Any], cold: dict[str, Any] | None, load: dict[str, Any]
) -> dict[str, Any]:
    summaries: dict[str, LoadSummary] = load["summaries"]
    baseline_rps = summaries["baseline"].rps
    ratio = summaries["app"].rps / baseline_rps if baseline_rps else 0.0
    generator = harness.resolve_generator(opts.generator)
    problems = []
    if cold is not None:
        for key in ("mesteri_run", "make_run"):
            if cold[key] is not None and not cold[key]["postgres_stopped"]:
                problems.append(
                    f"{key}: PostgreSQL still running after Ctrl-C "
                    f"(pids {cold[key]['leftover_postgres_pids']})"
                )
    if not load["postgres_stopped_after_api"]:
        problems.append("mesteri api: PostgreSQL still running after Ctrl-C")
    return {
        "when": started["when"],
        "revision": harness.git_revision(),
        "machine": {**started["machine"], "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "generator": {
            "name": generator,
            "description": harness.generator_description(generator),
            "threads": opts.threads if generator == "wrk" else 1,
            "cpu": opts.generator_cpu,
            "nice": opts.generator_nice,
        },
        "settings": {
            "connections": opts.connections,
            "duration_s": opts.duration,
            "warmup_s": opts.warmup,
            "rounds": opts.rounds,
            "baseline_loop": opts.baseline_loop,
            "data_dir": str(opts.data_dir),
        },
        "scenarios": {key: summary.as_dict() for key, summary in summaries.items()},
        "ratio_app_vs_baseline": round(ratio, 3),
        "ratio_goal": RATIO_GOAL,
        "ratio_meets_goal": ratio >= RATIO_GOAL,
        "memory": load["memory"],
        "api_ready_s": load["api_ready_s"],
        "cold_start": cold,
        "problems": problems,
    }


def _cpu_text(cpu_pct: dict[str, float]) -> str:
    return " ".join(f"{name} {pct:.0f}%" for name, pct in cpu_pct.items())


def _mark(ok: bool) -> str:
    return "PASS" if ok else "BELOW"


def print_report(report: dict[str, Any]) -> None:
    gen, cfg, mem = report["generator"], report["settings"], report["memory"]
    machine = report["machine"]
    pinning = f", pinned to CPU {gen['cpu']}" if gen["cpu"] is not None else ""
    niceness = f", nice +{gen['nice']}" if gen["nice"] else ""
    threads = f"{gen['threads']} thread, " if gen["name"] == "wrk" else ""
    lines = [
        "",
        f"Mesteri benchmark  {report['when']}  revision {report['revision'] or '?'}",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, load average "
        f"{machine['loadavg_1m']} at start / {machine['loadavg_1m_at_end']} at end "
        "(other work on the machine makes figures noisy)",
        f"Load generator: {gen['description']} ({threads}{cfg['connections']} connections"
        f"{pinning}{niceness}); {cfg['duration_s']:g} s measured after {cfg['warmup_s']:g} s "
        f"warm-up; {cfg['rounds']} rounds each, medians",
        "",
        f"  {'scenario':<30} {'req/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}   CPU during the run (100% = one CPU)",
    ]
    for scenario in report["scenarios"].values():
        lines.append(
            f"  {scenario['label']:<30} {scenario['rps']:>10.1f} {scenario['p50_ms']:>8.2f} "
            f"{scenario['p90_ms']:>8.2f} {scenario['p99_ms']:>8.2f} {scenario['errors']:>7}   "
            f"{_cpu_text(scenario['cpu_pct'])}"
        )
    ratio = report["ratio_app_vs_baseline"]
    lines += [
        "",
        f"  app / baseline req/s:   {ratio:6.1%}   goal >= {report['ratio_goal']:.0%}   "
        f"{_mark(report['ratio_meets_goal'])}",
        f"  api idle RSS:        {mem['api_idle_rss_mb']:6.1f} MB   "
        f"goal <= {mem['goal_mb']:.0f} MB  {_mark(mem['meets_goal'])}   "
        f"(after load {mem['api_after_load_rss_mb']:.1f} MB; "
        f"baseline idle {mem['baseline_idle_rss_mb']:.1f} MB)",
        f"  `mesteri api` start to /ready: {report['api_ready_s']:.2f} s",
    ]
    cold = report["cold_start"]
    if cold is None:
        lines.append("  cold start: skipped (--skip-cold-start)")
    else:
        cli = cold["mesteri_run"]
        said = cli["cli_ready_to_serve_s"]
        lines.append(f"  cold start, median of {len(cli['samples'])} starts each:")
        lines.append(
            f"    `mesteri run`, existing data dir, launch to /ready 200: "
            f"{cli['ready_s']:.2f} s"
            + (f"  (it printed 'Ready to serve after {said}s')" if said is not None else "")
        )
        make = cold["make_run"]
        if make is not None:
            stale = (
                ", install stamp stale: make -o skipped the reinstall"
                if make["install_stamp_stale"]
                else ""
            )
            lines.append(
                f"    `make run`, existing data dir, launch to /ready 200:    "
                f"{make['ready_s']:.2f} s  (make adds {make['added_by_make_s']:+.2f} s{stale})"
            )
        else:
            lines.append(f"  `make run`: not timed ({cold['make_run_skipped']})")
        stopped = all(
            c is None or c["postgres_stopped"] for c in (cold["mesteri_run"], cold["make_run"])
        )
        lines.append(f"  embedded PostgreSQL stopped after Ctrl-C: {'yes' if stopped else 'NO'}")
    for problem in report["problems"]:
        lines.append(f"  PROBLEM: {problem}")
    lines.append("")
    say("\n".join(lines))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    # Ctrl-C and `kill` stop the servers (SIGINT even when started with it ignored, `cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    started = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": harness.machine_info(),
    }
    env = harness.bench_env(opts.data_dir)
    try:
        generator = harness.resolve_generator(opts.generator)
        say(f"Load generator: {harness.generator_description(generator)}")
        if prepare_data_dir(opts.data_dir, env):
            say("  created.")
        cold = None if opts.skip_cold_start else measure_cold_start(opts, env)
        load = measure_throughput(opts, env)
    except KeyboardInterrupt:
        say("Interrupted; the servers were stopped.")
        return 130
    except BenchError as exc:
        print(f"The benchmark broke: {exc}", file=sys.stderr)
        return 1
    report = build_report(opts, started, cold, load)
    print_report(report)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(report, indent=2) + "\n")
    say(f"Results: {opts.output}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
