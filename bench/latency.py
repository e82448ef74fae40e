#!/usr/bin/env python3
"""Start-up and whole-command latency, as a user feels it: python bench/latency.py [--runs N]

Times each command as a whole process (median of N runs) next to `python -c "import click"` measured in the
same run, and prints the ratios against the targets: `advisor --help` within 1.5x, `advisor check --json`
(simulated machine, every shipped model) within 3x. `advisor plan` (the whole catalog and rental table) is timed
against its own target: under a second, start-up included.

Beside the wall time it prints the CPU time (user + system) each command used, with its own ratio: on a shared
machine (load average above the core count) wall time also counts the time spent waiting for a core, which grows
with the length of the command and inflates every ratio. The load average is printed so that a reader knows which
column to trust; the verdicts are on wall time, as a user feels it.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

TARGETS = {"--help": 1.5, "check --json": 3.0}  # x the time of `import click`
SECONDS_TARGETS = {"plan --json": 1.0}  # absolute: the planner's full search, from issue 5


def _command(args):
    exe = shutil.which("advisor")
    return [exe, *args] if exe else [sys.executable, "-m", "advisor", *args]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(cmd, runs):
    """(median wall seconds, median CPU seconds), or (None, error lines)."""
    samples, cpu = [], []
    for _ in range(runs):
        cpu_start = _children_cpu_seconds()
        start = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - start)
        cpu.append(_children_cpu_seconds() - cpu_start)
        if done.returncode != 0:
            return None, done.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return (statistics.median(samples), statistics.median(cpu)), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    cases = [
        ("import click", [sys.executable, "-c", "import click"]),
        ("--help", _command(["--help"])),
        ("check --json", _command(["check", "--gpu", "RTX 4090", "--ram", "64", "--json"])),
        ("breakeven --json", _command(["breakeven", "--gpu", "RTX 4090", "--kwh-price", "0.3", "--json"])),
        ("plan --json", _command(["plan", "--model", "llama-3-70b", "--context", "32768", "--min-tokens-per-s", "15",
                                  "--json"])),
    ]
    base = cpu_base = None
    failed = False
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.2f} on {os.cpu_count()} cores")
    print(f"{'command':<18} {'median ms':>10} {'x click':>8} {'cpu ms':>7} {'x click':>8}  target (wall)")
    for name, cmd in cases:
        timed, error = _time(cmd, args.runs)
        if timed is None:
            print(f"{name:<18} {'—':>10} {'—':>8}  not available: {' '.join(error)}")
            continue
        seconds, cpu_seconds = timed
        base = base or seconds
        cpu_base = cpu_base or cpu_seconds or None
        ratio = seconds / base
        cpu_ratio = f"{cpu_seconds / cpu_base:>8.2f}" if cpu_base else f"{'—':>8}"
        target, limit = TARGETS.get(name), SECONDS_TARGETS.get(name)
        verdict = "" if target is None else (f"<= {target}x " + ("ok" if ratio <= target else "MISSED"))
        if limit is not None:
            verdict = f"<= {limit:g} s " + ("ok" if seconds <= limit else "MISSED")
        failed |= (target is not None and ratio > target) or (limit is not None and seconds > limit)
        print(f"{name:<18} {seconds * 1000:>10.0f} {ratio:>8.2f} {cpu_seconds * 1000:>7.0f} {cpu_ratio}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
