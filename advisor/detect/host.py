"""This host's RAM: psutil's figures, capped by a container's cgroup limit."""

from __future__ import annotations

from pathlib import Path

from advisor.core.units import GIB

# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above this is none.
CGROUP_NO_LIMIT_BYTES = 1 << 60


def _err(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).strip()


def read_cgroup_limit(root: Path = Path("/sys/fs/cgroup")) -> tuple[int | None, int | None]:
    """(limit, usage) in bytes of this process's memory cgroup (v2, then v1); None where unlimited."""
    candidates = [
        (root / "memory.max", root / "memory.current"),  # cgroup v2
        (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes"),  # v1
    ]
    for limit_path, usage_path in candidates:
        try:
            raw = limit_path.read_text().strip()
        except OSError:
            continue
        if raw == "max":
            return None, None
        try:
            limit = int(raw)
        except ValueError:
            continue
        if limit >= CGROUP_NO_LIMIT_BYTES or limit <= 0:  # 0 or negative cannot be a limit a process runs under
            return None, None
        try:
            usage = int(usage_path.read_text().strip())
        except (OSError, ValueError):
            usage = None
        if usage is not None and usage < 0:
            usage = None
        return limit, usage
    return None, None


def detect_ram(cgroup_root: Path = Path("/sys/fs/cgroup")) -> tuple[int | None, int | None, list[str]]:
    """(total, available, notes): psutil's figures, capped by a container's cgroup limit."""
    notes = []
    try:
        import psutil

        vm = psutil.virtual_memory()
        total, available = int(vm.total), int(vm.available)
    except Exception as exc:
        return None, None, [f"RAM unknown ({_err(exc)})"]
    if total <= 0:
        return None, None, [f"RAM unknown (the system reported {total} bytes)"]
    if not 0 <= available <= total:
        notes.append(f"available RAM unknown (the system reported {available} of {total} bytes); verdicts use the "
                     "total")
        available = None
    limit, usage = read_cgroup_limit(cgroup_root)
    if limit is not None and limit < total:
        notes.append(f"container memory limit {limit / GIB:.1f} GiB (host has {total / GIB:.1f} GiB)")
        total = limit
        room = limit - usage if usage is not None else limit
        available = max(0, min(available if available is not None else room, room))
    return total, available, notes


# ---------------------------------------------------------------- CPU: cores, threads, instruction set

CPUINFO = Path("/proc/cpuinfo")
# The CPU flags that decide llama.cpp's kernels (Linux /proc/cpuinfo names), kept from the hundred-odd listed.
ISA_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
             "amx_tile", "amx_int8", "amx_bf16", "neon", "dotprod", "i8mm", "sve", "sve2", "sme")
# aarch64 /proc/cpuinfo "Features" names -> the names above (asimd is NEON, asimddp its int8 dot product)
ARM_FEATURES = {"asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve", "sve2": "sve2", "sme": "sme"}
# macOS sysctl names -> the names above (Apple silicon hw.optional.arm.FEAT_*, Intel Macs hw.optional.*)
MAC_FLAGS = {"hw.optional.neon": "neon", "hw.optional.arm.FEAT_DotProd": "dotprod", "hw.optional.arm.FEAT_I8MM": "i8mm",
             "hw.optional.avx2_0": "avx2", "hw.optional.fma": "fma", "hw.optional.avx512f": "avx512f",
             "hw.optional.avx512bw": "avx512bw", "hw.optional.avx512vnni": "avx512_vnni"}
MAC_PERFORMANCE_CORES = "hw.perflevel0.physicalcpu"  # what llama.cpp's default -t reads on macOS
CGROUP_V1_CPU_DIRS = ("cpu", "cpu,cpuacct")


def read_cpu_flags(cpuinfo: Path = CPUINFO) -> tuple[tuple[str, ...], str]:
    """(ISA flags, where from) from the first processor of /proc/cpuinfo: x86 'flags', aarch64 'Features'."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor's block says it for all (llama.cpp assumes the same)
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "flags":
                    have = set(value.split())
                    return tuple(f for f in ISA_FLAGS if f in have), f"{cpuinfo} flags"
                if key == "features":
                    have = {ARM_FEATURES[f] for f in value.split() if f in ARM_FEATURES}
                    return tuple(f for f in ISA_FLAGS if f in have), f"{cpuinfo} Features"
    except OSError as exc:
        return (), f"{cpuinfo} unreadable ({_err(exc)})"
    return (), f"no flags line in {cpuinfo}"


def read_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time this cgroup may use (quota / period: cgroup v2 cpu.max, then v1 cfs), None if unlimited."""
    try:
        quota, _, period = (root / "cpu.max").read_text().strip().partition(" ")
        if quota == "max":
            return None
        q, p = int(quota), int(period or 0)
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        pass
    for name in CGROUP_V1_CPU_DIRS:
        try:
            q = int((root / name / "cpu.cfs_quota_us").read_text().strip())
            p = int((root / name / "cpu.cfs_period_us").read_text().strip())
        except (OSError, ValueError):
            continue
        return q / p if q > 0 and p > 0 else None  # -1: no quota
    return None


def _affinity() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):  # not Linux
        return None


SYS_CPU = Path("/sys/devices/system/cpu")


def physical_cores_from_sys(sys_cpu: Path = SYS_CPU) -> int | None:
    """Physical cores as llama.cpp counts them on Linux (common/common.cpp common_cpu_get_num_physical_cores): the
    distinct thread_siblings masks of cpu0, cpu1, ... until the first that is missing."""
    siblings = set()
    cpu = 0
    while True:
        try:
            siblings.add((sys_cpu / f"cpu{cpu}" / "topology" / "thread_siblings").read_text().strip())
        except OSError:
            break
        cpu += 1
    return len(siblings) or None


def _counts() -> tuple[int | None, int | None]:
    """(physical cores, logical CPUs): llama.cpp's count from /sys, else psutil's."""
    import os

    physical = physical_cores_from_sys()
    logical = os.cpu_count()
    if physical is None:
        try:
            import psutil

            physical = psutil.cpu_count(logical=False) or None
        except Exception:
            physical = None
    return physical, logical


def _sysctl_many(names) -> dict[str, str]:
    """Several sysctl values with one process (macOS only: on Linux nothing here runs)."""
    try:
        import subprocess

        out = subprocess.run(["sysctl", *names], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found[key.strip()] = value.strip()
    return found


def detect_cpu(cpuinfo: Path = CPUINFO, cgroup_root: Path = Path("/sys/fs/cgroup"), affinity=_affinity,
               counts=_counts, system: str | None = None, sysctl_many=_sysctl_many):
    """This CPU as llama.cpp's threads use it: the cores this process may use (the fewest of the physical cores,
    the CPUs of its affinity mask and its cgroup's CPU quota), llama.cpp's default thread count, and the ISA row of
    profiles/hardware/cpu_isa.toml its flags reach. Every field says where it came from."""
    import platform

    from advisor.core.hardware import Cpu
    from advisor.engines.llamacpp import default_threads
    from advisor.sources.cpu_isa import isa_for_flags

    system = system if system is not None else platform.system()
    physical, logical = counts()
    performance = None
    if system == "Darwin":
        values = sysctl_many([*MAC_FLAGS, MAC_PERFORMANCE_CORES])
        flags = tuple(f for f in ISA_FLAGS if any(MAC_FLAGS[k] == f and values.get(k) == "1" for k in MAC_FLAGS))
        flags_source = "sysctl hw.optional"
        perf = values.get(MAC_PERFORMANCE_CORES, "")
        performance = int(perf) if perf.isdigit() and int(perf) > 0 else None
    else:
        flags, flags_source = read_cpu_flags(cpuinfo)
    limits = []  # (cores, where)
    if physical:
        limits.append((float(physical), f"{physical} physical cores"))
    elif logical:
        limits.append((float(logical), f"{logical} logical CPUs (physical cores unknown)"))
    mask = affinity()
    if mask:
        limits.append((float(mask), f"{mask} CPUs in the affinity mask (sched_getaffinity)"))
    quota = read_cpu_quota(cgroup_root)
    if quota is not None:
        limits.append((quota, f"a cgroup CPU quota of {quota:g} CPUs"))
    cores = min(c for c, _ in limits) if limits else None
    if cores is None:
        cores_source = "unknown (psutil and sched_getaffinity gave nothing)"
    else:
        binding = [w for c, w in limits if c == cores]
        others = [w for c, w in limits if c != cores]
        cores_source = "; ".join(binding) + (f" (also: {', '.join(others)})" if others else "")
    threads = default_threads(physical, logical, performance)
    how = ("the performance cores" if performance else "the physical cores" if physical else
           "hardware_concurrency, halved above 4")
    threads_source = (f"llama.cpp's default -t (common/common.cpp common_cpu_get_num_math: {how})" if threads
                      else "unknown")
    isa = isa_for_flags(flags) if flags else None
    isa_source = (f"{flags_source}: {', '.join(isa.requires)}" if isa else
                  f"{flags_source}: no row of profiles/hardware/cpu_isa.toml matches")
    return Cpu(cores=cores, threads=threads, isa=isa, flags=tuple(flags), physical_cores=physical, logical_cpus=logical,
               cores_source=cores_source, threads_source=threads_source, isa_source=isa_source)
