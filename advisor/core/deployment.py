"""How an engine spreads a model over a machine (the Deployment), and what each device then holds (the Placement).

    Deployment: engine, tp (tensor-parallel ranks), pp (pipeline stages), dp (data-parallel replicas), ep (expert
                parallel ranks), sequences, context per sequence, offload policy
    Placement:  per device, its layers, weight bytes, cache bytes, buffers and the memory it may use; the stage it
                belongs to (stages take turns within a token, the ranks of one stage work at once); the all-reduce
                each tensor-parallel stage does per token.

Engines (advisor/engines) choose and validate deployments and build placements; memory, speed and power read the
placement and never ask which engine made it. Pure data.
"""

from __future__ import annotations

from dataclasses import field
from advisor.core.record import record, replace

OFFLOAD_KINDS = ("none", "layers", "experts", "all")
HOST = -1  # device_index of the host (RAM + CPU)


@record
class Offload:
    """What goes to host RAM: nothing, whole layers (llama.cpp -ngl), the routed experts of `host_layers` layers
    (--n-cpu-moe), or everything (CPU only)."""

    kind: str = "none"
    host_layers: int = 0

    def as_dict(self) -> dict:
        return {"kind": self.kind, "host_layers": self.host_layers}


@record
class Deployment:
    """How an engine runs a model on a machine: tensor-, pipeline-, data- and expert-parallel degrees, the
    sequences served at once with their context each, and what is offloaded to host memory."""

    engine: str
    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    sequences: int = 1
    context_per_sequence: int = 0
    offload: Offload = field(default_factory=Offload)
    why: str = ""  # how the engine chose it, when there was a choice ("tp 3 does not divide 64 heads")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def label(self) -> str:
        """"TP4", "TP2 x PP3", "layer split x3" style tag, empty for one device."""
        parts = [f"TP{self.tp}"] if self.tp > 1 else []
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        return " x ".join(parts)

    def as_dict(self) -> dict:
        return {"engine": self.engine, "tp": self.tp, "pp": self.pp, "dp": self.dp, "ep": self.ep,
                "sequences": self.sequences, "context_per_sequence": self.context_per_sequence,
                "offload": self.offload.as_dict()}


@record
class DeviceUse:
    """What one device holds. `usable_bytes` None: the memory it may use is not known, so `fits` is unknown too."""

    name: str
    layers: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    usable_bytes: int | None  # free (or total) memory minus the headroom
    host: bool = False
    device_index: int = HOST  # index into Machine.gpus; HOST for RAM
    stage: int = 0  # devices of one stage work at once (tensor parallel); stages take turns
    compute_share: float = 0.0  # share of a token's FLOPs this device does
    read_bytes: int | None = None  # weights read per token here, when they are not its share of the model's
    expert_layers: int = 0  # layers whose routed experts this device holds apart from their layer (RAM)
    # clean file pages of weights it holds in another form as well (llama.cpp's CPU_REPACK copy beside the memory
    # map): resident after load until memory is short, never read again, so in `resident_bytes`, not `total_bytes`
    page_cache_bytes: int = 0

    def but(self, **changes) -> DeviceUse:
        """A copy with `changes` (record.replace: a placement search copies DeviceUses tens of thousands of times)."""
        return replace(self, **changes)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def resident_bytes(self) -> int:
        """What the process shows resident on an unpressed machine: the total and the page cache beside it."""
        return self.total_bytes + self.page_cache_bytes

    @property
    def fits(self) -> bool | None:
        if self.usable_bytes is None:
            return None
        return self.total_bytes <= self.usable_bytes

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "host": self.host,
            "layers": self.layers,
            "weights_bytes": self.weights_bytes,
            "kv_bytes": self.kv_bytes,
            "compute_bytes": self.compute_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "usable_bytes": self.usable_bytes,
            "fits": self.fits,
            "page_cache_bytes": self.page_cache_bytes,
            "resident_bytes": self.resident_bytes,
        }


@record
class AllReduce:
    """The collectives of a tensor-parallel stage: `per_layer` all-reduces of `bytes_each` per token and layer, over
    `ranks` GPUs (Megatron-style tensor parallelism: one after attention, one after the MLP)."""

    ranks: int
    per_layer: int
    bytes_each: int


@record
class Placement:
    """Where everything is: `kind` is "gpu" | "gpu+cpu" | "cpu" | "none" (where the parts go, or that they cannot
    go anywhere); `fits` True / False, or None when a memory it depends on is not known."""

    kind: str
    devices: tuple[DeviceUse, ...]
    gpu_layers: int
    fits: bool | None
    allreduce: AllReduce | None = None
    max_sequences: int | None = None
    notes: tuple[str, ...] = ()


def verdict(uses) -> bool | None:
    """All fit: True; one does not: False; otherwise (some unknown) None."""
    seen_unknown = False
    for u in uses:
        if u.fits is False:
            return False
        if u.fits is None:
            seen_unknown = True
    return None if seen_unknown else True
