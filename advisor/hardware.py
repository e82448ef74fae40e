"""Hardware detection (NVML, psutil, cgroups, Apple sysctl) and simulated machines.

The only module that touches NVML. `pynvml` (from the nvidia-ml-py package) is imported lazily by
`_load_nvml`, which tests replace with a fake module. Every NVML query is wrapped so that a failure
(NotSupported, a GPU lost from the bus, an old driver without memory-info v2) degrades that one field
to None and adds a note; only a failing nvmlInit means "no NVIDIA GPU visible".
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from .catalog import HardwareSpec, find_by_nvml_name, find_hardware
from .errors import UsageError
from .machine import Device, Machine
from .units import GIB

# Apple's recommendedMaxWorkingSetSize (the memory Metal may use): 2/3 of RAM on small machines,
# 3/4 on larger ones. 8 GB M1 -> 5726.63 MB (0.667); 64 GB -> 51539.61 MB (0.75); 192 GB M2 Ultra
# -> 154618.82 MB (0.75) (calibration/memory_logs.csv A04, A05).
APPLE_SMALL_RAM_BYTES = 36 * GIB
APPLE_SMALL_WORKING_SET = 2 / 3
APPLE_LARGE_WORKING_SET = 3 / 4
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages); anything above this is none.
CGROUP_NO_LIMIT_BYTES = 1 << 60
NVML_MILLIWATTS_PER_WATT = 1000
# Unified-memory PCs (DGX Spark, Strix Halo) share RAM with the GPU like a Mac does.
UNIFIED_KINDS = ("apple", "unified")


def apple_working_set_bytes(ram_bytes: int) -> int:
    share = APPLE_SMALL_WORKING_SET if ram_bytes <= APPLE_SMALL_RAM_BYTES else APPLE_LARGE_WORKING_SET
    return int(ram_bytes * share)


# ---------------------------------------------------------------- NVML


def _load_nvml():
    """The pynvml module of nvidia-ml-py, or None when it is not installed."""
    try:
        import pynvml  # provided by the nvidia-ml-py package
    except ImportError:
        return None
    return pynvml


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _err(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip()


class _Query:
    """Runs NVML calls; a failure returns None and records a note naming the field."""

    def __init__(self, nvml, label: str):
        self.nvml, self.label, self.notes = nvml, label, []

    def __call__(self, field: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:  # NVMLError subclasses, AttributeError on old bindings
            self.notes.append(f"{self.label}: {field} unknown ({_err(exc)})")
            return None


def _memory(q: _Query, handle):
    """(total, free) from memory-info v2 when the driver has it, else v1."""
    nvml = q.nvml
    v2 = getattr(nvml, "nvmlMemory_v2", None)
    info = None
    if v2 is not None:
        try:
            info = nvml.nvmlDeviceGetMemoryInfo(handle, version=v2)
        except Exception:
            info = None  # NotSupported / FunctionNotFound on older drivers: fall back to v1
    if info is None:
        info = q("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
    if info is None:
        return None, None
    return int(info.total), int(info.free)


def _device_from_handle(nvml, handle, index: int, label_prefix: str = "GPU") -> tuple[Device, list[str]]:
    q = _Query(nvml, f"{label_prefix} {index}")
    name = q("name", nvml.nvmlDeviceGetName, handle)
    name = _text(name) if name is not None else f"NVIDIA GPU {index}"
    q.label = f"{label_prefix} {index} ({name})"
    total, free = _memory(q, handle)
    power_mw = q("power limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    spec = find_by_nvml_name(name)
    device = Device(
        name=name,
        kind="gpu",
        memory_total_bytes=total,
        memory_free_bytes=free,
        bandwidth_gb_s=spec.bandwidth_gb_s if spec else None,
        fp16_tflops=_fp16(spec),
        power_limit_watts=_power_limit(power_mw, spec),
        index=index,
        catalog_id=spec.id if spec else None,
    )
    notes = q.notes
    if spec is None:
        notes.append(f"{label_prefix} {index} ({name}) is not in the catalog: bandwidth unknown (give --bandwidth)")
    elif power_mw is None and spec.tdp_watts:
        notes.append(f"{label_prefix} {index} ({name}): power limit not readable, using the catalog TDP "
                     f"({spec.tdp_watts:g} W)")
    return device, notes


def _power_limit(power_mw, spec: HardwareSpec | None) -> float | None:
    """The enforced limit (a user may have capped the card with nvidia-smi -pl), else the catalog TDP."""
    if power_mw is not None:
        return power_mw / NVML_MILLIWATTS_PER_WATT
    return spec.tdp_watts if spec else None


def _mig_devices(nvml, handle, parent: Device, notes: list[str]) -> list[Device] | None:
    """The MIG slices of a GPU in MIG mode (each is what a process can use), or None if MIG is off."""
    mode = None
    try:
        mode = nvml.nvmlDeviceGetMigMode(handle)
    except Exception:
        return None  # NotSupported on cards without MIG
    current = mode[0] if isinstance(mode, (tuple, list)) else mode
    if not current:
        return None
    slices = []
    try:
        count = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
    except Exception as exc:
        notes.append(f"{parent.name}: MIG enabled but its slices could not be listed ({_err(exc)})")
        return []
    for j in range(count):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except Exception:
            continue  # an empty slot
        q = _Query(nvml, f"{parent.name} MIG {j}")
        name = q("name", nvml.nvmlDeviceGetName, mig)
        total, free = _memory(q, mig)
        notes += q.notes
        slices.append(
            replace(
                parent,
                name=f"{parent.name} MIG {_text(name) if name else j}",
                memory_total_bytes=total,
                memory_free_bytes=free,
                notes=("MIG slice: bandwidth and compute are a share of the parent's",),
            )
        )
    return slices


def detect_gpus(nvml=None) -> tuple[tuple[Device, ...], list[str], bool]:
    """(devices, notes, nvml_ok). Never raises: a broken NVML means no GPU and a note saying why."""
    nvml = nvml if nvml is not None else _load_nvml()
    if nvml is None:
        return (), ["NVML not available (nvidia-ml-py not installed)"], False
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return (), [f"no NVIDIA GPU visible: NVML could not start ({_err(exc)})"], False
    devices, notes = [], []
    try:
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            return (), [f"NVML could not count GPUs ({_err(exc)})"], False
        for i in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(i)
            except Exception as exc:
                notes.append(f"GPU {i} skipped: {_err(exc)}")
                continue
            device, dev_notes = _device_from_handle(nvml, handle, i)
            notes += dev_notes
            if device.memory_total_bytes is None:
                notes.append(f"GPU {i} ({device.name}) left out: its memory could not be read")
                continue
            slices = _mig_devices(nvml, handle, device, notes)
            if slices is None:
                devices.append(device)
            else:
                devices += [replace(s, index=len(devices) + k) for k, s in enumerate(slices)]
                notes.append(f"GPU {i} ({device.name}) is in MIG mode: its {len(slices)} slice(s) are listed instead")
        for d in devices:
            if d.memory_free_bytes is not None and d.memory_total_bytes:
                held = d.memory_total_bytes - d.memory_free_bytes
                if held > d.memory_total_bytes // 10:
                    notes.append(f"{d.name}: {held / GIB:.1f} GiB held by other processes; verdicts use free memory")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return tuple(devices), notes, True


def _fp16(spec: HardwareSpec | None) -> float | None:
    if spec is None:
        return None
    return spec.fp16_fp32acc_tflops or spec.fp16_tflops


# ---------------------------------------------------------------- RAM, cgroups, Apple


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
        if limit >= CGROUP_NO_LIMIT_BYTES:
            return None, None
        try:
            usage = int(usage_path.read_text().strip())
        except (OSError, ValueError):
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
    limit, usage = read_cgroup_limit(cgroup_root)
    if limit is not None and limit < total:
        notes.append(f"container memory limit {limit / GIB:.1f} GiB (host has {total / GIB:.1f} GiB)")
        total = limit
        room = limit - usage if usage is not None else limit
        available = max(0, min(available, room))
    return total, available, notes


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
        fp16_tflops=_fp16(spec),
        catalog_id=spec.id if spec else None,
        notes=("Metal working set: the share of unified memory the GPU may use",),
    )
    return device, notes


def detect_machine(nvml=None, cgroup_root: Path = Path("/sys/fs/cgroup"), sysctl=_sysctl, system=None, arch=None) -> Machine:
    gpus, notes, _ = detect_gpus(nvml)
    total, available, ram_notes = detect_ram(cgroup_root)
    notes += ram_notes
    source = "nvml" if gpus else "none"
    if not gpus:
        apple, apple_notes = detect_apple(sysctl, system, arch)
        notes += apple_notes
        if apple is not None:
            gpus, source = (apple,), "apple"
            notes = [n for n in notes if not n.startswith(("no NVIDIA", "NVML"))]
        else:
            notes.append("no GPU found: evaluating CPU-only")
    return Machine(source=source, gpus=tuple(gpus), ram_total_bytes=total, ram_available_bytes=available,
                   notes=tuple(notes))


# ---------------------------------------------------------------- simulated machines

_COUNT = re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+)$", re.IGNORECASE)
MAX_SIMULATED_GPUS = 64


def parse_gpu_spec(text: str) -> tuple[int, HardwareSpec]:
    """'2x RTX 3090' -> (2, spec); 'RTX 4090' -> (1, spec)."""
    match = _COUNT.match(text)
    count, name = (int(match.group(1)), match.group(2)) if match else (1, text)
    if not 1 <= count <= MAX_SIMULATED_GPUS:
        raise UsageError(f"GPU count must be between 1 and {MAX_SIMULATED_GPUS}, got {count} in '{text}'")
    spec = find_hardware(name)
    if spec.kind == "cpu":
        raise UsageError(f"'{spec.name}' is a CPU memory configuration, not a GPU; give --ram and --cpu-bandwidth")
    return count, spec


def simulated_machine(
    gpus: tuple[str, ...] = (),
    vram_gib: float | None = None,
    bandwidth_gb_s: float | None = None,
    ram_gib: float | None = None,
    cpu_bandwidth_gb_s: float | None = None,
) -> Machine:
    """A machine from the catalog (`--gpu`), a custom card (`--vram`/`--bandwidth`) and `--ram`."""
    for label, value in (("--vram", vram_gib), ("--ram", ram_gib), ("--bandwidth", bandwidth_gb_s),
                         ("--cpu-bandwidth", cpu_bandwidth_gb_s)):
        if value is not None and not value > 0:
            raise UsageError(f"{label} must be a positive number, got {value}")
    devices: list[Device] = []
    notes: list[str] = []
    ram_bytes = int(ram_gib * GIB) if ram_gib else None
    for text in gpus:
        count, spec = parse_gpu_spec(text)
        if spec.kind in UNIFIED_KINDS:
            if count != 1:
                raise UsageError(f"{spec.name} is a single unified-memory system; give it once")
            if ram_bytes is None:
                ram_bytes = int((spec.memory_gib or 0) * GIB)
                notes.append(f"{spec.name}: no --ram given, assuming the largest configuration ({spec.memory_gib:g} GB)")
            devices.append(Device(
                name=spec.name, kind="apple", memory_total_bytes=apple_working_set_bytes(ram_bytes),
                bandwidth_gb_s=spec.bandwidth_gb_s, fp16_tflops=_fp16(spec), catalog_id=spec.id,
                index=len(devices), notes=("GPU share of unified memory (working set)",),
            ))
            continue
        memory = int(spec.memory_gib * GIB) if spec.memory_gib else None
        if vram_gib is not None:
            memory = int(vram_gib * GIB)
        for _ in range(count):
            devices.append(Device(
                name=spec.name, kind="gpu", memory_total_bytes=memory, bandwidth_gb_s=bandwidth_gb_s or spec.bandwidth_gb_s,
                fp16_tflops=_fp16(spec), power_limit_watts=spec.tdp_watts, catalog_id=spec.id, index=len(devices),
            ))
    if not gpus and vram_gib is not None:
        devices.append(Device(name=f"custom GPU ({vram_gib:g} GiB)", kind="gpu", memory_total_bytes=int(vram_gib * GIB),
                              bandwidth_gb_s=bandwidth_gb_s, index=0))
        if bandwidth_gb_s is None:
            notes.append("custom GPU: bandwidth unknown (give --bandwidth)")
    if not devices:
        notes.append("no GPU given: evaluating CPU-only")
    if ram_bytes is None:
        notes.append("no --ram given: RAM not checked")
    return Machine(source="simulated", gpus=tuple(devices), ram_total_bytes=ram_bytes, ram_available_bytes=ram_bytes,
                   cpu_bandwidth_gb_s=cpu_bandwidth_gb_s, notes=tuple(notes))

