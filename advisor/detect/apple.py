"""Apple Silicon: the GPU as a share of unified memory (sysctl)."""

from __future__ import annotations

from advisor.core.hardware import Device
from advisor.core.units import GIB
from advisor.errors import UsageError
from advisor.core.hardware import apple_working_set_bytes
from advisor.sources.catalog import find_hardware, fp16_tflops



def _sysctl(name: str) -> str | None:
    try:
        import subprocess  # only on the detection path: keeps it out of start-up

        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def detect_apple(sysctl=_sysctl, system: str | None = None, machine: str | None = None) -> tuple[Device | None, list[str]]:
    """The Apple Silicon GPU as a unified-memory device, or None elsewhere."""
    import platform

    system = system if system is not None else platform.system()
    machine = machine if machine is not None else platform.machine()
    if system != "Darwin" or machine != "arm64":
        return None, []
    brand = sysctl("machdep.cpu.brand_string") or "Apple Silicon"
    mem = sysctl("hw.memsize")
    notes = []
    ram = int(mem) if mem and mem.isdigit() else None
    spec = None
    try:
        spec = find_hardware(brand)
    except UsageError:
        notes.append(f"{brand} is not in the catalog: bandwidth unknown")
    if ram is None:
        notes.append("unified memory size unknown (sysctl hw.memsize failed)")
    device = Device(
        name=brand,
        kind="apple",
        memory_total_bytes=apple_working_set_bytes(ram) if ram else None,
        bandwidth_gb_s=spec.bandwidth_gb_s if spec else None,
        fp16_tflops=fp16_tflops(spec),
        catalog_id=spec.id if spec else None,
        segment=spec.segment if spec else "",
        notes=("Metal working set: the share of unified memory the GPU may use",),
    )
    return device, notes
