"""What crossing the sandbox boundary costs the engine kinds whose engine runs on the trusted
side: per run of each problem's benchmark workload, with its reference in a real sandbox, the
exchanges (a request, a question or an answer each way), the bytes each way, the trusted
clock around an exchange, and the trusted process's CPU per run with the link against the
same workloads with the reference plugged straight into the engine.

    .venv/bin/python benchmarks/engine_link.py [--runs 10] [--json var/bench/engine_link.json]

grader/README.md's table of the protocol comes from this.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.bank import PROBLEMS_DIR, problem_read  # noqa: E402
from grader.harnesses import harness_get  # noqa: E402
from grader.harnesses.engine_allocator import engine_case_config, run_engine  # noqa: E402
from grader.harnesses.engine_run import (  # noqa: E402
    Link,
    drive,
    one_thread,
    random_workload,
    reference_class,
    serial_bound,
    tiny_engine,
)
from grader.harnesses.engine_scheduler import engine_config, run_schedule  # noqa: E402
from grader.sandbox import SandboxSession  # noqa: E402


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CountingSession:
    """A session that counts each exchange's bytes and outside time."""

    def __init__(self, session: SandboxSession) -> None:
        self.session = session
        self.sent: list[int] = []
        self.received: list[int] = []
        self.outside_ns: list[int] = []

    def call(self, message, timeout_s, measure_cpu=False):
        reply, outside_ns, cpu_ns = self.session.call(message, timeout_s, measure_cpu)
        self.sent.append(len(json.dumps(message, separators=(",", ":"))))
        self.received.append(len(json.dumps(reply, separators=(",", ":"))))
        self.outside_ns.append(outside_ns)
        return reply, outside_ns, cpu_ns

    def __getattr__(self, name):
        return getattr(self.session, name)


def measure(slug: str, runs: int) -> dict:
    spec = problem_read(PROBLEMS_DIR / slug).as_spec()
    case = spec.benchmark
    if slug == "priority-scheduler":
        config, part = engine_config(case), "scheduler_cls"

        def run(link, requests):
            budget = config["max_num_batched_tokens"]
            return run_schedule(link, requests, config, serial_bound(requests, budget)).steps

    else:
        config, part = engine_case_config(case), "allocator_cls"

        def run(link, requests):
            return run_engine(link, requests, config).steps

    workloads = [random_workload(case, random.Random(index)) for index in range(runs)]
    with SandboxSession(
        harness_get(spec.harness), spec.reference_code, spec.entry_point, spec.limits
    ) as session:
        session.start(4096)
        counting = CountingSession(session)
        run(Link(counting, 60), workloads[0])  # warm-up
        counting.sent.clear(), counting.received.clear(), counting.outside_ns.clear()
        steps, started_s, started_cpu = 0, time.perf_counter(), cpu_s()
        for requests in workloads:
            steps += run(Link(counting, 60), requests)
        linked_wall_s, linked_cpu_s = time.perf_counter() - started_s, cpu_s() - started_cpu
    started_cpu = cpu_s()
    with one_thread():
        for requests in workloads:
            engine = tiny_engine(
                config, **{part: reference_class(spec.reference_code, spec.entry_point)}
            )
            drive(engine, requests, 10 * serial_bound(requests, 1), time.perf_counter_ns)
    plugged_cpu_s = cpu_s() - started_cpu
    exchanges = len(counting.outside_ns)
    return {
        "problem": slug,
        "runs": runs,
        "steps_per_run": steps / runs,
        "exchanges_per_step": round(exchanges / steps, 2),
        "bytes_to_sandbox_mean_max": [round(statistics.fmean(counting.sent)), max(counting.sent)],
        "bytes_from_sandbox_mean_max": [
            round(statistics.fmean(counting.received)),
            max(counting.received),
        ],
        "exchange_us_p50_p90": [
            round(statistics.median(counting.outside_ns) / 1e3),
            round(statistics.quantiles(counting.outside_ns, n=10)[-1] / 1e3),
        ],
        "run_wall_ms": round(linked_wall_s / runs * 1e3, 1),
        "decisions_ms_per_run": round(sum(counting.outside_ns) / runs / 1e6, 1),
        "trusted_cpu_ms_per_run": round(linked_cpu_s / runs * 1e3, 1),
        "plugged_in_cpu_ms_per_run": round(plugged_cpu_s / runs * 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [measure(slug, args.runs) for slug in ("priority-scheduler", "kv-allocator")]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
