"""What the estimators know about a machine: plain frozen data, filled by detection or simulation."""

from __future__ import annotations

from dataclasses import dataclass, field

DEVICE_KINDS = ("gpu", "apple")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Machine:
    source: str  # "nvml" | "simulated" | "none"
    gpus: tuple[Device, ...] = ()
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    cpu_bandwidth_gb_s: float | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ram_usable_bytes(self) -> int | None:
        if self.ram_available_bytes is not None:
            return self.ram_available_bytes
        return self.ram_total_bytes

    @property
    def is_apple(self) -> bool:
        return any(d.kind == "apple" for d in self.gpus)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "gpus": [d.as_dict() for d in self.gpus],
            "ram_total_bytes": self.ram_total_bytes,
            "ram_available_bytes": self.ram_available_bytes,
            "cpu_bandwidth_gb_s": self.cpu_bandwidth_gb_s,
            "notes": list(self.notes),
        }
