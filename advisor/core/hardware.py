"""What the estimators know about a machine: devices, the link between them, and the memory they share.

Plain frozen data, filled by detection (advisor/detect) or simulation. Unknown fields are None: a missing figure
degrades the verdicts that depend on it, never silently counts as enough.

Topology: a discrete GPU has memory of its own beside the host's RAM; an Apple or other unified-memory system is one
pool, in which the GPU's working set is part of RAM, never added to it (`Machine.unified`).
"""

from __future__ import annotations

from dataclasses import field

from advisor.core.record import record
from advisor.core.units import GIB

DEVICE_KINDS = ("gpu", "apple")

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



@record
class Device:
    """One accelerator. Unknown fields are None: a missing figure degrades that field only."""

    name: str
    kind: str = "gpu"  # "gpu": discrete memory (CUDA); "apple": a share of unified memory (Metal)
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    bandwidth_gb_s: float | None = None
    fp16_tflops: float | None = None
    power_limit_watts: float | None = None
    index: int = 0
    catalog_id: str | None = None
    notes: tuple[str, ...] = ()
    segment: str = ""  # "consumer" | "workstation" | "datacenter" | "" (the catalog's; sets prefill efficiency)

    @property
    def usable_bytes(self) -> int | None:
        """Free memory when known (another process may hold some), else the total."""
        if self.memory_free_bytes is not None:
            return self.memory_free_bytes
        return self.memory_total_bytes

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "catalog_id": self.catalog_id,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_free_bytes": self.memory_free_bytes,
            "bandwidth_gb_s": self.bandwidth_gb_s,
            "fp16_tflops": self.fp16_tflops,
            "power_limit_watts": self.power_limit_watts,
            "notes": list(self.notes),
        }


@record
class Link:
    """What a tensor-parallel all-reduce between the GPUs crosses: per-direction bandwidth and per-call latency."""

    id: str
    name: str
    bandwidth_gb_s: float
    latency_us: float
    source: str = ""

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "bandwidth_gb_s": self.bandwidth_gb_s, "latency_us": self.latency_us,
                "source": self.source}


# CPU weight formats with a per-core figure in profiles/hardware/cpu_isa.toml: "int8" for the K-quants and legacy
# quants (their CPU kernels dot int8 weights with Q8_K / Q8_0 activations: ggml-cpu quants.c ggml_vec_dot_q*_q8_*),
# "mxfp4" for OCP microscaling FP4 (gpt-oss).
CPU_FORMATS = ("int8", "mxfp4")
_INT8_PREFIXES = ("Q", "IQ", "TQ")  # Q4_K_M, Q8_0, IQ4_XS, TQ1_0: ggml's integer quants
_MXFP4_PREFIX = "MXFP4"


def cpu_weight_format(quant: str) -> str | None:
    """Which CPU kernel family multiplies weights of this type ("int8", "mxfp4"), or None (F16, BF16, F32, FP8: no
    per-core figure)."""
    name = quant.strip().upper()
    if name.startswith(_MXFP4_PREFIX):
        return "mxfp4"
    for prefix in _INT8_PREFIXES:
        if name.startswith(prefix) and name[len(prefix):][:1].isdigit():
            return "int8"
    return None


@record
class CpuRate:
    """What one core reaches in llama.cpp's kernels for one weight format, in GFLOPS (2 x weights per second)."""

    format: str  # one of CPU_FORMATS
    decode_gflops_per_core: float  # matrix-vector (one token)
    decode_source: str
    prefill_gflops_per_core: float | None = None  # matrix-matrix (a prompt)
    prefill_source: str = ""

    def as_dict(self) -> dict:
        return {"format": self.format, "decode_gflops_per_core": self.decode_gflops_per_core,
                "decode_source": self.decode_source, "prefill_gflops_per_core": self.prefill_gflops_per_core,
                "prefill_source": self.prefill_source}


@record
class CpuIsa:
    """An instruction-set level with its per-core figures (a row of profiles/hardware/cpu_isa.toml)."""

    id: str
    name: str
    requires: tuple[str, ...] = ()
    rates: tuple[CpuRate, ...] = ()

    def rate(self, fmt: str | None) -> CpuRate | None:
        return next((r for r in self.rates if r.format == fmt), None)


@record
class Cpu:
    """The CPU as the engine's threads use it. Unknown fields are None; each known one says where it came from."""

    cores: float | None = None  # cores this process may use (affinity, cgroup quota, physical cores), or given
    threads: int | None = None  # threads the engine runs (llama.cpp -t: given, or its default)
    isa: CpuIsa | None = None
    flags: tuple[str, ...] = ()  # the ISA features seen (avx2, avx512f, avx512_vnni, amx_tile, dotprod, ...)
    physical_cores: int | None = None
    logical_cpus: int | None = None
    cores_source: str = ""
    threads_source: str = ""
    isa_source: str = ""

    @property
    def compute_cores(self) -> float | None:
        """Cores that do the work: the threads, but no more than the cores there are (an oversubscribed thread
        waits for a core; it adds no throughput)."""
        if self.cores is None or self.threads is None:
            return None
        return min(float(self.threads), self.cores)

    def as_dict(self) -> dict:
        return {"cores": self.cores, "cores_source": self.cores_source, "threads": self.threads,
                "threads_source": self.threads_source, "isa": self.isa.id if self.isa else None,
                "isa_name": self.isa.name if self.isa else None, "isa_source": self.isa_source,
                "flags": list(self.flags), "physical_cores": self.physical_cores, "logical_cpus": self.logical_cpus}


@record
class Machine:
    """What a machine has, observed (NVML, the host) or simulated: its GPUs, RAM, CPU and the links between
    them. None is unknown, never zero."""

    source: str  # "nvml" | "simulated" | "none"
    gpus: tuple[Device, ...] = ()
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    cpu_bandwidth_gb_s: float | None = None
    notes: tuple[str, ...] = field(default=())
    link: Link | None = None  # between the GPUs; None: one GPU, or not known
    cpu_bandwidth_measured: bool = False  # cpu_bandwidth_gb_s was achieved by a probe here, not a platform figure
    cpu: Cpu | None = None  # cores, threads and ISA; None: not known (a simulated machine without --cpu-cores)
    host_link: Link | None = None  # between the host and the first GPU (its PCIe slot); None: not known

    @property
    def ram_usable_bytes(self) -> int | None:
        if self.ram_available_bytes is not None:
            return self.ram_available_bytes
        return self.ram_total_bytes

    @property
    def is_apple(self) -> bool:
        return any(d.kind == "apple" for d in self.gpus)

    @property
    def unified(self) -> bool:
        """One memory pool for GPU and CPU (Apple, DGX Spark, Strix Halo): the GPU's share is part of the RAM."""
        return self.is_apple

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "gpus": [d.as_dict() for d in self.gpus],
            "ram_total_bytes": self.ram_total_bytes,
            "ram_available_bytes": self.ram_available_bytes,
            "cpu_bandwidth_gb_s": self.cpu_bandwidth_gb_s,
            "cpu": self.cpu.as_dict() if self.cpu is not None else None,
            "notes": list(self.notes),
        }
