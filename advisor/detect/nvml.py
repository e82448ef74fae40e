"""NVIDIA GPUs through NVML: the only module that touches it.

`pynvml` (from the nvidia-ml-py package) is imported lazily by `_load_nvml`, which tests replace with a fake module.
Every NVML query is wrapped so that a failure (NotSupported, a GPU lost from the bus, an old driver without
memory-info v2) degrades that one field to None and adds a note; only a failing nvmlInit means "no NVIDIA GPU
visible".
"""

from __future__ import annotations

from dataclasses import replace

from advisor.core.hardware import Device
from advisor.core.units import GIB
from advisor.sources.catalog import HardwareSpec, find_by_nvml_name, fp16_tflops

NVML_MILLIWATTS_PER_WATT = 1000


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
        fp16_tflops=fp16_tflops(spec),
        power_limit_watts=_power_limit(power_mw, spec),
        index=index,
        catalog_id=spec.id if spec else None,
        segment=spec.segment if spec else "",
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



