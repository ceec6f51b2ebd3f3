"""Benchmark: where the weekly job's memory goes, step by step (issue 15: peak memory flat in the account count).

Runs ``costagent demo`` (the weekly job alone, as benchmarks/weekly_job.py does) in this process, in a fresh
COSTAGENT_HOME, while a thread samples the resident set size (``/proc/self/statm``) every 20 ms and reads which
step the main thread is in (and whether it is loading an input or writing an output through the IO manager).
Prints, per run and step, the RSS when the step started and the highest RSS seen in it, then the process's peak.
Polars and DuckDB allocate outside Python, so tracemalloc misses most of it: RSS is the figure that counts.

    python benchmarks/stage_memory.py [--accounts 1000] [--as-of 2026-11-23]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
STEP_FRAMES = ("dagster_event_sequence_for_step", "core_dagster_event_sequence_for_step")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def where(thread_id: int) -> tuple[str, str]:
    """(step key, phase) the thread is in: phase is ``load <table>``, ``write <table>`` or ``compute``."""
    frame, step, phase = sys._current_frames().get(thread_id), "-", "compute"  # noqa: SLF001 (a profiler)
    while frame is not None:
        name = frame.f_code.co_name
        if name in ("load_input", "handle_output") and "warehouse" in frame.f_code.co_filename and phase == "compute":
            context = frame.f_locals.get("context")
            table = context.asset_key.path[-1] if context is not None and context.has_asset_key else "?"
            phase = f"{'load' if name == 'load_input' else 'write'} {table}"
        if name in STEP_FRAMES and step == "-":
            step_context = frame.f_locals.get("step_context")
            step = getattr(getattr(step_context, "step", None), "key", "-")
        frame = frame.f_back
    return step, phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--as-of", default="2026-11-23")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main_thread, done = threading.get_ident(), threading.Event()
    # (run number, step) -> [rss at start, peak]; a run starts again when a step seen before comes back.
    steps: dict[tuple[int, str], list[float]] = {}
    phases: dict[tuple[int, str, str], float] = {}
    run = [1]

    def sample() -> None:
        last = None
        while not done.is_set():
            (step, phase), rss = where(main_thread), rss_mb()
            if step != "-":
                if step != last and (run[0], step) in steps:
                    run[0] += 1
                entry = steps.setdefault((run[0], step), [rss, rss])
                entry[1] = max(entry[1], rss)
                key = (run[0], step, phase)
                phases[key] = max(phases.get(key, 0.0), rss)
                last = step
            time.sleep(0.02)

    home = tempfile.mkdtemp(prefix=f"costagent-stage-memory-{args.accounts}-")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    from costagent_assets.cli.main import main as costagent

    started = time.perf_counter()
    code = costagent(["--home", home, "demo", "--accounts", str(args.accounts), "--as-of", args.as_of,
                      "--history-months", "0"])
    done.set()
    sampler.join()
    shutil.rmtree(home, ignore_errors=True)
    print(f"\n{args.accounts} accounts: exit {code}, {time.perf_counter() - started:.1f} s, peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (max RSS of the process)")
    print(f"{'run':>3} {'step':<28} {'start MB':>8} {'peak MB':>8}  highest phase")
    for (n, step), (start, peak) in steps.items():
        top = max(((p, mb) for (r, s, p), mb in phases.items() if (r, s) == (n, step)), key=lambda x: x[1])
        print(f"{n:>3} {step:<28} {start:>8.0f} {peak:>8.0f}  {top[0]}")


if __name__ == "__main__":
    main()
