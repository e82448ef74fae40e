"""Machines described instead of detected: catalog GPUs (`--gpu "2x RTX 3090"`), a custom card, a RAM size."""

from __future__ import annotations

import re
from functools import lru_cache

from advisor.core.hardware import Cpu, Device, Machine, apple_working_set_bytes
from advisor.core.units import GIB
from advisor.errors import UsageError
from advisor.sources.catalog import HardwareSpec, find_hardware, fp16_tflops
from advisor.sources.links import host_link_for, link_for

# Unified-memory PCs (DGX Spark, Strix Halo) share RAM with the GPU like a Mac does.
UNIFIED_KINDS = ("apple", "unified")

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
        raise UsageError(f"'{spec.name}' is a CPU memory configuration, not a GPU; give --ram and --ram-bandwidth")
    return count, spec


@lru_cache(maxsize=512)
def _catalog_gpus(spec: HardwareSpec, memory: int | None, bandwidth_gb_s: float | None, first: int,
                  count: int) -> tuple[Device, ...]:
    """`count` GPUs of one catalog entry, indexed from `first`. Devices are immutable, so n of them are the n - 1
    made before and one more: `advisor plan` builds each card at every count up to 16 (~14,000 devices otherwise)."""
    fewer = _catalog_gpus(spec, memory, bandwidth_gb_s, first, count - 1) if count > 1 else ()
    return fewer + (Device(
        name=spec.name, kind="gpu", memory_total_bytes=memory, bandwidth_gb_s=bandwidth_gb_s,
        fp16_tflops=fp16_tflops(spec), power_limit_watts=spec.tdp_watts, catalog_id=spec.id,
        index=first + count - 1, segment=spec.segment,
    ),)


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
                bandwidth_gb_s=spec.bandwidth_gb_s, fp16_tflops=fp16_tflops(spec), catalog_id=spec.id,
                index=len(devices), notes=("GPU share of unified memory (working set)",), segment=spec.segment,
            ))
            if cpu_bandwidth_gb_s is None and spec.bandwidth_gb_s:
                # one pool: layers left to the CPU read the same memory (the CPU cores reach less of it than the
                # GPU; CPU_DECODE_FIT's efficiency stands for that)
                cpu_bandwidth_gb_s = spec.bandwidth_gb_s
                notes.append(f"{spec.name}: layers on the CPU read the same unified memory ({spec.bandwidth_gb_s:g} GB/s)")
            continue
        memory = int(spec.memory_gib * GIB) if spec.memory_gib else None
        if vram_gib is not None:
            memory = int(vram_gib * GIB)
        devices += _catalog_gpus(spec, memory, bandwidth_gb_s or spec.bandwidth_gb_s, len(devices), count)
    if not gpus and vram_gib is not None:
        devices.append(Device(name=f"custom GPU ({vram_gib:g} GiB)", kind="gpu", memory_total_bytes=int(vram_gib * GIB),
                              bandwidth_gb_s=bandwidth_gb_s, index=0))
        if bandwidth_gb_s is None:
            notes.append("custom GPU: bandwidth unknown (give --bandwidth)")
    if not devices:
        notes.append("no GPU given: evaluating CPU-only")
    if ram_bytes is None:
        notes.append("no --ram given: RAM not checked")
    link = None
    if len(devices) > 1 and all(d.kind == "gpu" for d in devices):
        link = link_for(devices[0].catalog_id)
    host_link = host_link_for(devices[0].catalog_id) if devices and devices[0].kind == "gpu" else None
    return Machine(source="simulated", gpus=tuple(devices), ram_total_bytes=ram_bytes, ram_available_bytes=ram_bytes,
                   cpu_bandwidth_gb_s=cpu_bandwidth_gb_s, notes=tuple(notes), link=link, host_link=host_link)



# llama.cpp cannot run more threads than this (ggml/include/ggml.h GGML_MAX_N_THREADS, commit 0c1e5709)
GGML_MAX_N_THREADS = 512
MAX_CPU_CORES = 4096  # far beyond any one machine (a 2-socket 192-core EPYC has 384 threads)


def with_cpu(machine: Machine, cores: int | None = None, threads: int | None = None, isa: str | None = None) -> Machine:
    """The machine with the CPU described by --cpu-cores, --threads and --cpu-isa (each replaces what detection
    found; nothing given leaves the machine as it is). Threads default to llama.cpp's: the cores."""
    if cores is None and threads is None and isa is None:
        return machine
    from dataclasses import replace

    from advisor.engines.llamacpp import default_threads

    for label, value, most in (("--cpu-cores", cores, MAX_CPU_CORES), ("--threads", threads, GGML_MAX_N_THREADS)):
        if value is not None and not (isinstance(value, int) and 1 <= value <= most):
            raise UsageError(f"{label} must be a whole number between 1 and {most}, got {value}")
    cpu = machine.cpu or Cpu()
    if cores is not None:
        cpu = replace(cpu, cores=float(cores), physical_cores=cores, logical_cpus=None, cores_source="given (--cpu-cores)")
        if threads is None:
            cpu = replace(cpu, threads=default_threads(cores),
                          threads_source="llama.cpp's default -t (common/common.cpp common_cpu_get_num_math: the "
                                         "physical cores, here --cpu-cores)")
    if threads is not None:
        cpu = replace(cpu, threads=threads, threads_source="given (--threads)")
    if isa is not None:
        from advisor.sources.cpu_isa import isa_by_id

        row = isa_by_id(isa)
        cpu = replace(cpu, isa=row, isa_source="given (--cpu-isa)")
    return replace(machine, cpu=cpu)
