"""This machine's RAM bandwidth, measured: a short copy of a buffer much larger than any CPU cache.

What layers or experts in RAM decode at is RAM bandwidth, and guessing it (a desktop's dual-channel DDR5-5600 is
89.6 GB/s) is off by 2-5x on laptops, VMs and servers. The probe copies a 64 MiB buffer a few times with
memmove (CPython's bytearray slice assignment) within a time budget and counts the bytes read and written. It runs
on one core, so it is a lower bound for what llama.cpp's threads read together; --ram-bandwidth or --ram-type
give the platform's figure instead. The result is cached per machine (CPU model, core count, RAM size) in the
user cache directory; ADVISOR_NO_PROBE=1 (or --no-probe) skips it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from advisor.core.units import MIB

# beyond the L3 of most CPUs (32-64 MiB; X3D parts have 96-128 MiB, where the probe reads partly from cache);
# larger buffers cost page faults: 2 x 64 MiB measured in 0.07 s here, 2 x 256 MiB in 1 s
PROBE_BYTES = 64 * MIB
PROBE_BUDGET_S = 0.25  # the limit is 0.3 s for the whole probe
PROBE_MAX_COPIES = 4
BYTES_PER_COPY = 2  # a copy reads the source and writes the destination: two bytes moved per byte copied
CACHE_FILE = "ram_bandwidth.json"


def _machine_key(ram_bytes: int | None) -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}|{os.cpu_count()}|{ram_bytes}"


def measure_copy_gb_s(size: int = PROBE_BYTES, budget_s: float = PROBE_BUDGET_S) -> float | None:
    """GB/s (10^9 bytes) of read + write traffic of a single-core memmove, or None if the buffer cannot be had."""
    try:
        src = bytearray(size)
        dst = bytearray(size)
    except MemoryError:
        return None
    dst[:] = src  # touch every page first: the first copy pays for page faults, not bandwidth
    best = None
    started = time.perf_counter()
    for _ in range(PROBE_MAX_COPIES):
        t0 = time.perf_counter()
        dst[:] = src
        elapsed = time.perf_counter() - t0
        if elapsed > 0:
            rate = BYTES_PER_COPY * size / elapsed / 1e9
            best = rate if best is None else max(best, rate)
        if time.perf_counter() - started > budget_s:
            break
    return best


def ram_bandwidth(ram_bytes: int | None, cache_dir: Path | None = None) -> tuple[float | None, str]:
    """(GB/s, where it came from), from the cache or a fresh probe; (None, reason) when skipped."""
    if os.environ.get("ADVISOR_NO_PROBE"):
        return None, "not measured (ADVISOR_NO_PROBE / --no-probe)"
    key = _machine_key(ram_bytes)
    path = (cache_dir or _cache_dir()) / CACHE_FILE if (cache_dir or _cache_dir()) else None
    if path is not None:
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            if stored.get("key") == key and isinstance(stored.get("gb_s"), (int, float)) and stored["gb_s"] > 0:
                return float(stored["gb_s"]), f"measured earlier on this machine (cached in {path})"
        except (OSError, ValueError):
            pass
    gb_s = measure_copy_gb_s()
    if gb_s is None:
        return None, "not measured (no memory for the probe buffer)"
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{CACHE_FILE}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": key, "gb_s": gb_s}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass
    return gb_s, "measured: a 64 MiB copy on one core (a lower bound; --ram-type or --ram-bandwidth for the platform)"


def _cache_dir() -> Path | None:
    try:
        from advisor.sources.dirs import user_dir

        return user_dir("cache")
    except Exception:  # no home directory to be had
        return None
