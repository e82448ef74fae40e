"""NVIDIA GPUs through NVML: the only module that touches it.

`pynvml` (from the nvidia-ml-py package) is imported lazily by `_load_nvml`, which tests replace with a fake module.
Every NVML query is wrapped so that a failure (NotSupported, a GPU lost from the bus, an old driver without
memory-info v2) degrades that one field to None and adds a note; only a failing nvmlInit means "no NVIDIA GPU
visible". A figure that cannot be true (free above total, a 0 W power limit, a negative or absurd size) is unknown
too, with a note. A GPU in MIG mode contributes one MIG instance, of its own size and bandwidth share: a CUDA process
sees one instance, and a split across instances is never offered.
"""

from __future__ import annotations

from dataclasses import replace

from advisor.core.hardware import Device
from advisor.core.units import GIB
from advisor.sources.catalog import HardwareSpec, find_by_nvml_name, fp16_tflops

NVML_MILLIWATTS_PER_WATT = 1000
# NVML figures beyond these cannot be true (the largest GPU has under 300 GB and draws under 2 kW): a driver or
# binding bug, read as unknown with a note rather than believed.
MAX_GPU_MEMORY_BYTES = 1 << 44  # 16 TiB
MAX_POWER_LIMIT_MW = 5_000_000  # 5 kW
MAX_GPUS = 1024  # GPUs one NVML reports (a DGX has 8 or 16)


def _load_nvml():
    """The pynvml module of nvidia-ml-py, or None when it is not installed. A binding that is installed but fails to
    import (a SyntaxError in an old nvidia-ml-py, an OSError from a broken driver library loaded at import) becomes
    a stand-in whose nvmlInit fails with the reason, so detection notes it and carries on without NVIDIA GPUs."""
    try:
        import pynvml  # provided by the nvidia-ml-py package
    except ImportError:
        return None
    except Exception as exc:
        return _BrokenBinding(f"pynvml failed to import: {type(exc).__name__}: {_err(exc)}")
    return pynvml


class _BrokenBinding:
    def __init__(self, reason: str):
        self.reason = reason

    def nvmlInit(self):
        raise RuntimeError(self.reason)

    def nvmlShutdown(self):
        pass


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


def _memory(q: _Query, handle, most: int = MAX_GPU_MEMORY_BYTES):
    """(total, free) from memory-info v2 when the driver has it, else v1. A figure that cannot be true (not a number,
    a total of 0 or above `most`, free below 0 or above the total) is None, with a note."""
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
    total, free = _count(getattr(info, "total", None)), _count(getattr(info, "free", None))
    if total is None or not 0 < total <= most:
        q.notes.append(f"{q.label}: memory unknown (NVML reported a total of {getattr(info, 'total', None)!r} bytes, "
                       "which cannot be true)")
        return None, None
    if free is None or not 0 <= free <= total:
        q.notes.append(f"{q.label}: free memory unknown (NVML reported {getattr(info, 'free', None)!r} bytes free of "
                       f"{total}); verdicts use the total")
        free = None
    return total, free


def _count(value) -> int | None:
    """An NVML integer as an int, or None when it is not one (a binding returning garbage)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _device_from_handle(nvml, handle, index: int, label_prefix: str = "GPU") -> tuple[Device, list[str]]:
    q = _Query(nvml, f"{label_prefix} {index}")
    name = q("name", nvml.nvmlDeviceGetName, handle)
    name = _text(name) if name is not None else f"NVIDIA GPU {index}"
    q.label = f"{label_prefix} {index} ({name})"
    total, free = _memory(q, handle)
    power_mw = q("power limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    if power_mw is not None:
        mw = _count(power_mw)
        if mw is None or not 0 < mw <= MAX_POWER_LIMIT_MW:  # 0 W is what some boards answer when they do not know
            q.notes.append(f"{q.label}: power limit unknown (NVML reported {power_mw!r} mW, which cannot be true)")
            mw = None
        power_mw = mw
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
    """The MIG instances of a GPU in MIG mode, or None if MIG is off.

    Each instance is a device of its own size, with its share of the parent's bandwidth and FP16 rate: its memory
    over the parent's. MIG partitions the memory controllers and L2 with the memory slices (a 1g.10gb instance of an
    80 GB A100 owns 1/8 of them), so bandwidth, which sets decode speed, follows memory exactly; compute is cut in
    GPCs (1/7 of an A100), which NVML's per-instance attributes give in slices but without the parent's total on
    every driver, and 1/8 against 1/7 errs on the slow side. An instance whose memory cannot be read keeps it
    unknown (it holds nothing) and gets no share."""
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
    parent_total = parent.memory_total_bytes
    for j in range(_count(count) or 0):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except Exception:
            continue  # an empty slot
        q = _Query(nvml, f"{parent.name} MIG {j}")
        name = q("name", nvml.nvmlDeviceGetName, mig)
        name = _text(name) if name else str(j)
        # real drivers name an instance "NVIDIA A100-SXM4-80GB MIG 3g.40gb"; keep a bare profile name readable
        name = name if name.startswith(parent.name) else f"{parent.name} MIG {name}"
        q.label = name
        total, free = _memory(q, mig, most=parent_total or MAX_GPU_MEMORY_BYTES)
        uuid = None
        try:
            uuid = _text(nvml.nvmlDeviceGetUUID(mig))
        except Exception:
            pass  # only the hint of how to select it is lost
        notes += q.notes
        share = total / parent_total if total and parent_total else None
        slices.append(
            replace(
                parent,
                name=name,
                memory_total_bytes=total,
                memory_free_bytes=free,
                bandwidth_gb_s=parent.bandwidth_gb_s * share if share and parent.bandwidth_gb_s else None,
                fp16_tflops=parent.fp16_tflops * share if share and parent.fp16_tflops else None,
                notes=(f"MIG instance: {share:.0%} of the parent's memory, bandwidth and FP16 rate" if share else
                       "MIG instance: memory unknown, so its share of bandwidth and compute too",)
                + ((f"select it with CUDA_VISIBLE_DEVICES={uuid}",) if uuid else ()),
            )
        )
    return slices


def _largest(slices: list[Device]) -> Device:
    """The instance one process would choose: the most memory (free when known), the first of equals."""
    return max(slices, key=lambda d: d.usable_bytes or -1)  # max keeps the first of equals


def _mig_summary(gpu_index: int, parent: Device, slices: list[Device]) -> str:
    parts = []
    for d in slices:
        short = d.name[len(parent.name):].strip() or d.name
        mem = f"{d.memory_total_bytes / GIB:.1f} GiB" if d.memory_total_bytes else "memory unknown"
        bw = f", {d.bandwidth_gb_s:.0f} GB/s" if d.bandwidth_gb_s else ""
        parts.append(f"{short} ({mem}{bw})")
    return f"GPU {gpu_index} ({parent.name}) is in MIG mode with {len(slices)} instance(s): {', '.join(parts)}"


def _usable_mig(whole: list[Device], slices: list[Device], notes: list[str]) -> list[Device]:
    """What a process can use of the MIG instances: CUDA enumerates one MIG instance per process and MIG has no
    peer-to-peer between instances, so one instance is one device of its own and a split across instances (or
    between an instance and a whole GPU) is never offered. Whole GPUs beside them are what a multi-GPU run uses;
    with none, the largest instance is the device (the first of equals) and the others are listed in the notes."""
    if not slices:
        return []
    if whole:
        notes.append("MIG instances are not used beside whole GPUs (a process sees either one MIG instance or whole "
                     "GPUs): the whole GPUs are the devices here")
        return []
    chosen = _largest(slices)
    others = len(slices) - 1
    notes.append(f"a process sees one MIG instance: {chosen.name} (the largest) is the device here"
                 + (f"; the other {others} instance(s) are not added to it" if others else ""))
    return [replace(chosen, index=len(whole))]


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
    mig_slices: list[Device] = []  # the instances of every GPU in MIG mode
    try:
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            return (), [f"NVML could not count GPUs ({_err(exc)})"], False
        if _count(count) is None or not 0 <= count <= MAX_GPUS:
            return (), [f"NVML reported {count!r} GPUs, which cannot be true: GPUs unknown"], False
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
            elif slices:
                mig_slices += slices
                notes.append(_mig_summary(i, device, slices))
            else:
                notes.append(f"GPU {i} ({device.name}) is in MIG mode with no usable instance: nothing of it is used")
        devices += _usable_mig(devices, mig_slices, notes)
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



