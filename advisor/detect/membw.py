"""This machine's RAM bandwidth, measured: a short copy of a buffer much larger than any CPU cache.

What layers or experts in RAM decode at is RAM bandwidth, and guessing it (a desktop's dual-channel DDR5-5600 is
89.6 GB/s) is off by 2-5x on laptops, VMs and servers. The probe copies a 64 MiB buffer a few times with
memmove within a time budget and counts the bytes read and written, on as many threads as this process may use
cores (ctypes.memmove releases the GIL, so the copies run at once), since llama.cpp's threads read together and one
core alone often cannot draw a machine's bandwidth (measured here: ~20 GB/s on one core, ~27 GB/s on two);
--ram-bandwidth or --ram-type give the platform's figure instead. The result is cached per machine (CPU model, core count, RAM size) in the
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
MAX_PROBE_THREADS = 8  # a desktop's or a laptop's memory is drawn by a few cores; more threads only split the buffer
CACHE_FILE = "ram_bandwidth.json"
PROBE_FORMAT = 2  # in the cache key: figures of the one-core probe (format 1) are measured again


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
    return f"v{PROBE_FORMAT}|{cpu}|{os.cpu_count()}|{ram_bytes}|{probe_threads()}"


def probe_threads() -> int:
    """The cores this process may run on (its affinity), at most MAX_PROBE_THREADS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return max(1, min(MAX_PROBE_THREADS, usable))


def measure_copy_gb_s(size: int = PROBE_BYTES, budget_s: float = PROBE_BUDGET_S, threads: int = 1) -> float | None:
    """GB/s (10^9 bytes) of read + write traffic of `threads` memmoves at once (each its share of `size`), the best
    of a few rounds, or None if the buffers cannot be had."""
    import ctypes
    import threading

    share = max(1, size // threads)
    try:
        pairs = [(bytearray(share), bytearray(share)) for _ in range(threads)]
    except MemoryError:
        return None
    addresses = [(ctypes.addressof((ctypes.c_char * share).from_buffer(dst)),
                  ctypes.addressof((ctypes.c_char * share).from_buffer(src))) for src, dst in pairs]
    for dst, src in addresses:  # touch every page first: the first copy pays for page faults, not bandwidth
        ctypes.memmove(dst, src, share)

    def copy(dst, src, start):
        start.wait()
        ctypes.memmove(dst, src, share)

    best = None
    started = time.perf_counter()
    for _ in range(PROBE_MAX_COPIES):
        start = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=copy, args=(dst, src, start)) for dst, src in addresses]
        for w in workers:
            w.start()
        start.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        if elapsed > 0:
            rate = BYTES_PER_COPY * share * threads / elapsed / 1e9
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
    threads = probe_threads()
    gb_s = measure_copy_gb_s(threads=threads)
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
    cores = "one core" if threads == 1 else f"{threads} cores at once"
    return gb_s, f"measured: a 64 MiB copy on {cores} (--ram-type or --ram-bandwidth for the platform)"


def _cache_dir() -> Path | None:
    try:
        from advisor.sources.dirs import user_dir

        return user_dir("cache")
    except Exception:  # no home directory to be had
        return None
