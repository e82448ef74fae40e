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
