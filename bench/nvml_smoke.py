#!/usr/bin/env python3
"""Detection on a real NVIDIA machine, next to what nvidia-smi says: python bench/nvml_smoke.py

Run it wherever a GPU is available (the tests fake NVML; this is the check against a real driver). For each
GPU it prints what advisor's detection returned (through nvidia-ml-py) and what
`nvidia-smi --query-gpu=...` prints, and marks disagreements. Exit 0 when they agree, 1 when they do not,
2 when there is no NVIDIA driver / nvidia-smi here.
"""

import shutil
import subprocess
import sys

QUERY = "index,name,memory.total,memory.free,enforced.power.limit"
MIB = 1024**2
# nvidia-smi rounds to whole MiB and free memory moves between the two reads: allow a little drift.
FREE_TOLERANCE_MIB = 256


def nvidia_smi() -> list[dict] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    out = subprocess.run([exe, f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"], capture_output=True,
                         text=True, timeout=30)
    if out.returncode != 0:
        return None
    rows = []
    for line in out.stdout.strip().splitlines():
        index, name, total, free, power = [x.strip() for x in line.split(",")]
        rows.append({"index": int(index), "name": name, "total_mib": _num(total), "free_mib": _num(free),
                     "power_w": _num(power)})
    return rows


def _num(text):
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def main() -> int:
    from advisor.detect import detect_machine

    machine = detect_machine()
    smi = nvidia_smi()
    print(f"advisor: source={machine.source}, {len(machine.gpus)} GPU(s)")
    for note in machine.notes:
        print(f"  note: {note}")
    if smi is None:
        print("nvidia-smi: not available (no NVIDIA driver here)")
        return 2
    by_index = {row["index"]: row for row in smi}
    ok = len(smi) == len(machine.gpus) or any("MIG" in n for n in machine.notes)
    if not ok:
        print(f"MISMATCH: nvidia-smi lists {len(smi)} GPU(s), advisor {len(machine.gpus)}")
    for d in machine.gpus:
        row = by_index.get(d.index, {})
        total = d.memory_total_bytes / MIB if d.memory_total_bytes is not None else None
        free = d.memory_free_bytes / MIB if d.memory_free_bytes is not None else None
        checks = [
            ("name", d.name, row.get("name"), d.name == row.get("name")),
            ("memory.total MiB", total, row.get("total_mib"),
             total is not None and row.get("total_mib") is not None and abs(total - row["total_mib"]) < 1),
            ("memory.free MiB", free, row.get("free_mib"),
             free is not None and row.get("free_mib") is not None and abs(free - row["free_mib"]) < FREE_TOLERANCE_MIB),
            ("power limit W", d.power_limit_watts, row.get("power_w"),
             row.get("power_w") is None or (d.power_limit_watts is not None
                                            and abs(d.power_limit_watts - row["power_w"]) < 1)),
        ]
        print(f"GPU {d.index}: catalog entry {d.catalog_id or 'none (bandwidth unknown)'}, "
              f"bandwidth {d.bandwidth_gb_s} GB/s")
        for field, ours, theirs, agree in checks:
            print(f"  {field:<18} advisor {ours!s:<28} nvidia-smi {theirs!s:<28} {'ok' if agree else 'MISMATCH'}")
            ok &= agree
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
