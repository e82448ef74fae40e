"""`advisor plan`: which hardware to buy (or rent) for a model, a context and a speed. Pure given its inputs.

Every catalog entry becomes one or more options: a GPU in counts 1..max_gpus (homogeneous), each memory
configuration of a unified-memory system or CPU-only box, and every rental instance whose GPU the catalog knows.
For each option the search walks the precision ladder (weights high to low, then the KV cache high to low) and
takes the first combination that holds the whole context in the accelerator's memory (RAM for CPU-only) and
decodes at least the target tokens/s per sequence with a full cache. Then it prices the option:

    monthly energy  = tokens per month / 10^6 x local cost per 1M tokens   (cost.py: watts / (tokens/s) / 3.6)
    TCO (buy)       = purchase price + monthly energy x 12 x years
    TCO (rent)      = generating hours per month x price per hour x 12 x years   (the rent includes the power)
    break-even      = cost.compare() against the cheapest API of the model's quality tier

An option "meets the targets" only when it holds the context without spilling to RAM and reaches the speed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from functools import cached_property

from advisor import engines
from advisor.apps.estimate import (engine_context, estimate, fits_on_gpus, per_sequence_context, placement_of,
                                   search_terms)
from advisor.core.cost import DAYS_PER_MONTH, MONTHS_PER_YEAR, TOKENS_PER_UNIT, LocalRun, Usage, busy_hours, compare
from advisor.core.deployment import Deployment
from advisor.core.formats import QuantTable
from advisor.core.hardware import Machine
from advisor.core.memory import EngineSettings, Estimate, KVChoice
from advisor.core.model import ModelProfile
from advisor.core.power import PowerModel, power_known_whatever_runs, system_power
from advisor.core.record import record, replace
from advisor.core.speed import estimate_speed
from advisor.core.tensors import WeightsLayout, weights_layout
from advisor.core.units import GIB
from advisor.detect.simulated import simulated_machine
from advisor.errors import UsageError
from advisor.sources.catalog import HardwareSpec
from advisor.sources.prices import ApiPrice, Rental
from advisor.sources.ram_prices import RamKit

# The precision ladders, best first, are each engine's (engine.weight_ladder / kv_ladder in advisor/engines): weight
# precision is given up before cache precision (a q8_0 cache is close to lossless, a lower weight type is not).
SORTS = ("tco", "price", "speed", "context", "watts")
# Speeds closer than this are a tie when one option hides another: the decode model's median error is 4.3%
# (README, measured against throughput.csv), so a smaller difference says nothing.
SPEED_TIE_FRACTION = 0.05
CLOSEST_SHOWN = 8  # options listed when nothing meets the targets (`closest`)
CONTEXT_SEARCH_FLOOR = 256  # the max context in RAM (CPU-only, a MoE box) is bisected down to this many tokens
# _Probe.most_bound: bytes added to the memory a bound divides, for the integer divisions of per-rank shares (each
# rounds down by less than a byte per layer kind and rank): a bound only needs to be high enough, never tight
BOUND_SLACK_BYTES = 2**20


@record
class Targets:
    model: str
    context: int  # tokens per sequence
    min_tokens_per_s: float  # decode, per sequence
    concurrency: int = 1
    engine: str = "llama.cpp"
    max_gpus: int = 4
    ram_gib: float = 64.0  # system RAM assumed beside the GPUs
    budget: float | None = None  # purchase price (rent: total over the years), in the user's currency
    min_quant: str | None = None  # the lowest weight type acceptable: the engine's ladder is cut below it

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if self.min_quant is None:  # only when asked for (the files in tests/golden predate it)
            del out["min_quant"]
        return out


@record
class Economics:
    kwh_price: float
    currency: str
    fx: float  # units of currency per USD
    tokens_per_day: float
    input_share: float
    years: float

    @property
    def months(self) -> float:
        return self.years * MONTHS_PER_YEAR

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@record
class Option:
    """One machine to consider: bought (price) or rented (rental)."""

    label: str
    spec: HardwareSpec
    count: int
    machine: Machine
    memory_gib: float | None = None  # the configuration of a unified-memory or CPU-only option
    price: float | None = None  # purchase, in the user's currency; None when the catalog has none
    price_basis: str = ""
    rental: Rental | None = None
    rent_per_hour: float | None = None  # in the user's currency
    ram_kit: RamKit | None = None  # a MoE box: the GPUs plus this RAM, which holds the routed experts

    @property
    def experts_in_ram(self) -> bool:
        return self.ram_kit is not None

    @property
    def kind(self) -> str:
        return "rent" if self.rental is not None else "buy"

    @property
    def memory_bytes(self) -> int:
        """What can hold the model: the accelerators' memory (and a MoE box's RAM), or RAM on a CPU-only box."""
        if self.machine.gpus:
            return sum(d.usable_bytes or 0 for d in self.machine.gpus) + (
                self.machine.ram_usable_bytes or 0 if self.experts_in_ram else 0)
        return self.machine.ram_usable_bytes or 0


@record
class Candidate:
    option: Option
    meets_targets: bool
    why: str
    quant: str | None = None
    kv_type: str | None = None
    placement: str = "none"
    holds_context: bool = False
    max_context: int | None = None
    decode_tokens_per_s: float | None = None  # all sequences together
    prefill_tokens_per_s: float | None = None
    weights_bytes: int | None = None
    bits_per_weight: float | None = None
    kv_bytes: int | None = None
    watts: float | None = None  # at the wall while decoding
    monthly_energy_cost: float | None = None
    monthly_rent: float | None = None
    busy_hours_per_day: float | None = None
    tco: float | None = None
    api: str | None = None
    payback_months: float | None = None
    breakeven_tokens_per_month: float | None = None
    comparisons: tuple[dict, ...] = ()  # against every API of the tier: name, payback, break-even volume, savings
    notes: tuple[str, ...] = ()
    deployment: Deployment | None = None  # how the engine spreads the model over the option's GPUs

    @property
    def label(self) -> str:
        """The option, with the engine's parallelism when it is not plain, that is when the engine says why it
        chose it (vLLM on 3 GPUs: "... PP3"); a llama.cpp layer split over n GPUs is what "nx" already says."""
        d = self.deployment
        return f"{self.option.label} {d.label}" if d is not None and d.pp > 1 and d.why else self.option.label

    def as_dict(self) -> dict:
        o = self.option
        return {
            "hardware": o.spec.id, "hardware_name": o.spec.name, "count": o.count, "memory_gib": o.memory_gib,
            "kind": o.kind, "label": o.label, "quant": self.quant, "kv_type": self.kv_type,
            "placement": self.placement, "max_context": self.max_context,
            "decode_tokens_per_s": self.decode_tokens_per_s, "prefill_tokens_per_s": self.prefill_tokens_per_s,
            "weights_bytes": self.weights_bytes, "bits_per_weight": self.bits_per_weight, "kv_bytes": self.kv_bytes,
            "price": o.price, "price_basis": o.price_basis,
            "rent_per_hour": o.rent_per_hour, "rental_provider": o.rental.provider if o.rental else None,
            "watts": self.watts, "monthly_energy_cost": self.monthly_energy_cost, "monthly_rent": self.monthly_rent,
            "busy_hours_per_day": self.busy_hours_per_day, "tco": self.tco,
            "api": self.api, "payback_months": self.payback_months,
            "breakeven_tokens_per_month": self.breakeven_tokens_per_month,
            "api_comparisons": list(self.comparisons),
            "meets_targets": self.meets_targets, "why": self.why, "notes": list(self.notes),
            "deployment": self.deployment.as_dict() if self.deployment else None,
        } | ({"ram_kit": o.ram_kit.as_dict(), "ram_price": o.ram_kit.price_usd} if o.ram_kit is not None else {})


# ---------------------------------------------------------------- the options

# Words a table can drop from a marketed name without losing which part it is ("GeForce RTX 4090" -> "RTX 4090").
BRAND_WORDS = ("GeForce ", "Tesla ", "Instinct ", " Generation")


def memory_layout(machine: Machine) -> tuple:
    """What a placement and a max-context solve read of a machine, and nothing else: per GPU its kind and memory
    (not its name, bandwidth or power, which only speed and cost read), the RAM, the CPU (llama.cpp's CPU-only
    buffers depend on its ISA). Two machines with equal layouts get the same memory answers."""
    return (tuple((d.kind, d.memory_total_bytes, d.memory_free_bytes) for d in machine.gpus),
            machine.ram_total_bytes, machine.ram_available_bytes, machine.cpu)


def short_name(spec: HardwareSpec) -> str:
    """The marketed name without brand words or parenthesised detail: "H100 SXM5 80GB", "M2 Ultra"."""
    name = re.sub(r"\s*\([^)]*\)", "", spec.name)
    for word in BRAND_WORDS:
        name = name.replace(word, "")
    return name.strip()



def purchase_options(catalog: tuple[HardwareSpec, ...], targets: Targets, fx: float,
                     kits: tuple[RamKit, ...] = ()) -> tuple[list[Option], list[str]]:
    """Every catalog entry as a machine to buy, and notes on what was left out. A CPU-only box is priced by its RAM
    where `kits` (profiles/prices/ram.toml) has that size at that bandwidth (channels x MT/s x 8 bytes), as a MoE
    box's RAM is: its other parts, like a GPU box's, are not priced."""
    out, notes = [], []
    gpu_only = engines.get(targets.engine).gpu_only
    skipped = []
    for spec in catalog:
        if spec.kind == "gpu":
            if spec.memory_gib is None:
                skipped.append(spec.name)
                continue
            for n in range(1, targets.max_gpus + 1):
                machine = simulated_machine((f"{n}x {spec.id}",), ram_gib=targets.ram_gib)
                price = None if spec.launch_price_usd is None else n * spec.launch_price_usd * fx
                out.append(Option(f"{n}x {short_name(spec)}", spec, n, machine, None, price,
                                  "launch price, GPUs only" if price is not None else "no catalog price"))
            continue
        if gpu_only:
            continue
        sizes = spec.memory_options_gib or ((spec.memory_gib,) if spec.memory_gib else ())
        for size in sizes:
            if spec.kind == "cpu":
                machine = simulated_machine((), ram_gib=size, cpu_bandwidth_gb_s=spec.bandwidth_gb_s)
                label = f"{short_name(spec)}, {size:g} GB"
            else:
                machine = simulated_machine((spec.id,), ram_gib=size)
                label = f"{short_name(spec)} {size:g} GB"
            price, basis = None, "no catalog price"
            if spec.launch_price_usd is not None:
                if (usd := spec.price_for_memory(size)) is not None:
                    price, basis = usd * fx, f"launch price of the {size:g} GB configuration"
                else:
                    basis = "the catalog price is for another configuration"
            elif spec.kind == "cpu" and (kit := _kit_for(kits, spec, size)) is not None:
                price = kit.price_usd * fx
                basis = f"RAM only: the {kit.label} kit ({kit.as_of}, {kit.status}: {kit.source})"
            out.append(Option(label, spec, 1, machine, size, price, basis))
    if gpu_only:
        notes.append(f"{targets.engine} needs a discrete GPU: Apple, unified-memory and CPU-only options left out")
    if skipped:
        notes.append(f"left out (memory size unknown): {', '.join(skipped)}")
    return out, notes


# a RAM kit is a CPU-only box's configuration when their bandwidths (both channels x MT/s x 8 bytes) agree to this
# many GB/s: the two files state the same product of integers, rounded to one decimal
KIT_BANDWIDTH_TOLERANCE_GB_S = 0.05


def _kit_for(kits: tuple[RamKit, ...], spec: HardwareSpec, size_gib: float) -> RamKit | None:
    """The RAM kit that is this CPU-only configuration: the same size, the same channels x MT/s."""
    if spec.bandwidth_gb_s is None:
        return None
    return next((k for k in kits if k.capacity_gb == size_gib
                 and abs(k.bandwidth_gb_s - spec.bandwidth_gb_s) <= KIT_BANDWIDTH_TOLERANCE_GB_S), None)


# MoE boxes: one or two GPUs beside RAM that holds the routed experts (llama.cpp --fit / --n-cpu-moe), the way
# gpt-oss-120b, GLM-4.5-Air and Qwen3-235B run on a 16-24 GB card (issue 15)
MOE_BOX_MAX_GPUS = 2
MOE_BOX_SEGMENTS = ("consumer", "workstation")  # the cards such a box is built around; datacenter parts hold it all
EXPERTS_LABEL = "GPU+RAM (experts)"


def moe_box_options(catalog: tuple[HardwareSpec, ...], kits: tuple[RamKit, ...], model: ModelProfile,
                    targets: Targets, fx: float) -> list[Option]:
    """For a MoE model on an engine that keeps experts in RAM (one that loads GGUF files: llama.cpp, Ollama): each
    priced consumer or workstation GPU in counts 1..2 with each RAM kit, priced GPUs + kit."""
    if not model.is_moe or not engines.get(targets.engine).loads_gguf:
        return []
    out = []
    for spec in catalog:
        if spec.kind != "gpu" or spec.memory_gib is None or spec.launch_price_usd is None or \
                spec.segment not in MOE_BOX_SEGMENTS:
            continue
        for n in range(1, min(MOE_BOX_MAX_GPUS, targets.max_gpus) + 1):
            for kit in kits:
                machine = simulated_machine((f"{n}x {spec.id}",), ram_gib=kit.capacity_gb,
                                            cpu_bandwidth_gb_s=kit.bandwidth_gb_s)
                price = (n * spec.launch_price_usd + kit.price_usd) * fx
                out.append(Option(f"{n}x {short_name(spec)} + {kit.capacity_gb} GB {kit.type}, {EXPERTS_LABEL}", spec,
                                  n, machine, None,
                                  price, f"launch price, GPUs only, + the RAM kit ({kit.as_of}, {kit.status}: "
                                         f"{kit.source})", ram_kit=kit))
    return out


def rental_options(rentals: tuple[Rental, ...], find, targets: Targets, fx: float) -> tuple[list[Option], list[str]]:
    """Rental instances whose GPU the catalog knows (`find`: name -> HardwareSpec, or None or a UsageError for a name
    that means no single entry)."""
    out, unknown = [], []
    for r in rentals:
        if r.usd_per_hour is None:
            continue
        try:
            spec = find(r.gpu)
        except UsageError:
            spec = None
        if spec is None:
            unknown.append(r.gpu)
            continue
        if spec.kind != "gpu" or spec.memory_gib is None:
            continue
        if r.gpu_count > targets.max_gpus:  # --max-gpus bounds rented boxes too
            continue
        machine = simulated_machine((f"{r.gpu_count}x {spec.id}",), ram_gib=targets.ram_gib)
        out.append(Option(f"{r.gpu_count}x {short_name(spec)} ({r.provider})", spec, r.gpu_count, machine,
                          rental=r, price_basis=f"{r.provider} {r.offer}: {r.source}", rent_per_hour=r.usd_per_hour * fx))
    notes = []
    if unknown:
        notes.append(f"{len(unknown)} rental offers name no single catalog GPU (e.g. {unknown[0]}); left out")
    return out, notes


# ---------------------------------------------------------------- one option


@record
class Model:
    """The model under plan: a profile, and the weights a GGUF file fixes (None: the quant ladder)."""

    profile: ModelProfile
    weights: WeightsLayout | None = None
    file_quant: str = ""


def weight_ladder(model: Model, targets: Targets) -> tuple[str, ...]:
    """The weight types to try, best first: the engine's ladder down to --min-quant (a GGUF file: its own)."""
    if model.weights is not None:
        if targets.min_quant is not None:
            raise UsageError(f"--min-quant chooses among weight types; a GGUF file's weights are fixed "
                             f"({model.file_quant}): leave it out, or plan the model by id or config.json")
        return (model.file_quant,)
    ladder = engines.get(targets.engine).weight_ladder
    if targets.min_quant is None:
        return ladder
    names = [q.lower() for q in ladder]
    if targets.min_quant.strip().lower() not in names:
        raise UsageError(f"--min-quant for {targets.engine} is one of {', '.join(ladder)} (best first), "
                         f"got '{targets.min_quant}'")
    return ladder[:names.index(targets.min_quant.strip().lower()) + 1]


def below_default(quant: str | None, engine: str) -> bool:
    """Whether a weight type is lower on the engine's ladder than its default (Q4_K_M; AWQ's 4 bits for vLLM: none)."""
    eng = engines.get(engine)
    ladder = eng.weight_ladder
    return quant in ladder and eng.default_quant in ladder and ladder.index(quant) > ladder.index(eng.default_quant)


@record
class _Rung:
    """One (weights, KV) combination tried on an option: "heavy" (the weights alone exceed the memory), "nofit"
    (it does not hold the context where it must), "unknown" (no decode speed), "slow" or "fast"."""

    status: str
    est: Estimate | None = None
    speed: object = None
    decode: float | None = None  # per sequence


class _Probe:
    """The rungs of the precision ladders tried on one option, each estimated at most once."""

    def __init__(self, option: Option, model: Model, targets: Targets, quants: QuantTable,
                 weights_of: dict | None = None, kv_bytes_of: dict | None = None, memory_of: dict | None = None):
        self.option, self.model, self.targets, self.quants = option, model, targets, quants
        # what depends on the machine's memory alone (estimates, fit checks, max contexts), per memory layout: the
        # catalog has many cards of one memory size, and a search asks the same of each (speed is computed apart)
        self.memory_of = {} if memory_of is None else memory_of
        self.memory_key = memory_layout(option.machine)
        self.engine = EngineSettings(name=targets.engine, parallel=targets.concurrency)
        self.context = engine_context(targets.context, self.engine)  # every one of `concurrency` sequences holds it
        self.machine = option.machine
        eng = engines.get(targets.engine)
        self.ladder = weight_ladder(model, targets)
        self.kv_ladder = eng.kv_ladder
        # where the model must run: all on the GPU(s), in RAM (CPU-only), or a MoE box's experts in RAM
        self.wanted = "cpu" if not self.machine.gpus else "experts" if option.experts_in_ram else "gpu"
        self.budget = option.memory_bytes
        self.weights_of = {} if weights_of is None else weights_of  # bytes per quant: the same for every option
        self.kv_bytes_of = {} if kv_bytes_of is None else kv_bytes_of  # cache bytes at the context, per KV type: too
        self.rungs: dict[tuple[str, str], _Rung] = {}
        self.reach: dict[tuple[str, str, str], int | None] = {}  # most(): per (weights, KV, placement)

    def share(self, other: "_Probe") -> None:
        """Use what `other`, a probe of the same machine, estimated (and what this one estimates, it then shares)."""
        self.rungs, self.reach = other.rungs, other.reach

    def run(self, q: str, kv: str, ctx: int, solve: bool = False) -> Estimate:
        key = ("estimate", q, kv, ctx, solve, self.memory_key)
        if key not in self.memory_of:
            self.memory_of[key] = estimate(self.model.profile, q, KVChoice(kv, kv), self.engine, ctx, self.machine,
                                           self.quants, weights=self.model.weights, solve_max_context=solve)
        return self.memory_of[key]

    def placed_at(self, q: str, kv: str, ctx: int) -> bool:
        """`placed(run(q, kv, ctx))` from the placement alone, once per memory layout."""
        key = ("placed", q, kv, ctx, self.memory_key)
        if key not in self.memory_of:
            placement, offload = placement_of(self.model.profile, q, KVChoice(kv, kv), self.engine, ctx,
                                              self.machine, self.quants, self.model.weights)
            self.memory_of[key] = self._runs_as_wanted(placement.kind, offload.kind, placement.fits)
        return self.memory_of[key]

    def fits_on(self, q: str, kv: str, ctx: int) -> bool:
        """fits_on_gpus for this machine, once per memory layout."""
        key = ("fits", q, kv, ctx, self.memory_key)
        if key not in self.memory_of:
            self.memory_of[key] = fits_on_gpus(self.model.profile, q, KVChoice(kv, kv), self.engine, ctx,
                                               self.machine, self.quants, self.model.weights)
        return self.memory_of[key]

    def layout(self, q: str) -> WeightsLayout:
        if self.model.weights is not None:
            return self.model.weights
        if q not in self.weights_of:
            self.weights_of[q] = weights_layout(self.model.profile, self.quants.recipe(q), self.quants)
        return self.weights_of[q]

    def weights(self, q: str) -> int:
        return self.layout(q).total_bytes

    def cannot_fit(self, q: str) -> bool:
        """The weights the GPUs must hold (all but the token embeddings, which llama.cpp keeps in RAM) exceed all
        of their memory: no estimate needed."""
        layout = self.layout(q)
        held = sum(d.memory_total_bytes or 0 for d in self.machine.gpus)
        return self.wanted == "gpu" and all(d.memory_total_bytes for d in self.machine.gpus) and \
            layout.total_bytes - layout.token_embd_bytes > held

    def placed(self, est: Estimate) -> bool:
        """Whether the estimate runs where this option must: a MoE box with routed experts (and only they) in RAM,
        or none where the GPUs hold it all (lighter weights, a shorter context: what fits is a tail of each ladder)."""
        offload = est.deployment.offload.kind if est.deployment is not None else None
        return self._runs_as_wanted(est.placement, offload, est.verdict)

    def _runs_as_wanted(self, kind: str, offload: str | None, fits: bool | None) -> bool:
        """`placed` from a placement's kind, its offload and its verdict."""
        if self.wanted == "experts":
            return kind == "gpu" or kind == "gpu+cpu" and offload == "experts" and fits is not False
        return kind == self.wanted

    def fits_gpus(self, q: str, kv: str) -> bool:
        """The memory check of `_try` alone: whether the rung's weights fit and it runs entirely on the GPU(s) (when
        not, the rung is "nofit", recorded as `_try` would)."""
        if (q, kv) in self.rungs:
            return self.rungs[(q, kv)].status not in ("heavy", "nofit")
        if self.weights(q) > self.budget or self.cannot_hold(q, kv) or not self.fits_on(q, kv, self.context):
            self.rungs[(q, kv)] = _Rung("heavy") if self.weights(q) > self.budget else _Rung("nofit")
            return False
        return True

    def cannot_hold(self, q: str, kv: str) -> bool:
        """A lower bound on what the GPUs must hold, no estimate needed: the weights but the token embeddings, and
        the whole cache at the context (`kv` cache bytes at it: the same on every machine, once one estimate has
        it), against all of their memory."""
        if kv not in self.kv_bytes_of or not self.machine.gpus:
            return False
        layout = self.layout(q)
        held, known = self._gpu_memory
        return known and layout.total_bytes - layout.token_embd_bytes + self.kv_bytes_of[kv] > held + BOUND_SLACK_BYTES

    @cached_property
    def _gpu_memory(self) -> tuple[int, bool]:
        """(all the GPUs' memory, whether every GPU's usable memory is known), for the bounds of `cannot_hold` and
        `most_bound`."""
        gpus = self.machine.gpus
        return (sum(max(d.memory_total_bytes or 0, d.usable_bytes or 0) for d in gpus),
                all(d.usable_bytes is not None for d in gpus))

    def monotone(self) -> bool:
        """The weights shrink down the ladder (what the shortcuts assume)."""
        sizes = [self.weights(q) for q in self.ladder]
        return bool(sizes) and bool(self.kv_ladder) and all(a >= b for a, b in zip(sizes, sizes[1:]))

    def heavy(self, q: str) -> str:
        return f"{q} weights {self.weights(q) / GIB:.1f} GiB > {self.budget / GIB:.1f} GiB"

    def rung(self, q: str, kv: str) -> _Rung:
        if (q, kv) not in self.rungs:
            self.rungs[(q, kv)] = self._try(q, kv)
        return self.rungs[(q, kv)]

    def _try(self, q: str, kv: str) -> _Rung:
        if self.weights(q) > self.budget:
            return _Rung("heavy")
        if self.wanted == "gpu" and (self.cannot_hold(q, kv) or not self.fits_on(q, kv, self.context)):
            return _Rung("nofit")
        est = self.run(q, kv, self.context)
        self.kv_bytes_of.setdefault(kv, est.kv_bytes)
        if not self.placed(est):
            return _Rung("nofit")
        speed = estimate_speed(est, self.machine, self.targets.concurrency)
        if speed.decode_tokens_per_s is None:
            return _Rung("unknown", est, speed)
        decode = speed.decode_tokens_per_s / self.targets.concurrency
        return _Rung("fast" if decode >= self.targets.min_tokens_per_s else "slow", est, speed, decode)

    def fastest_is_leanest(self) -> bool:
        """Whether no rung is as fast as the leanest (a compute-bound batch decodes as fast at more bytes): the
        rungs one step up from it hold more than all others below them, so they decide."""
        last = self.rung(self.ladder[-1], self.kv_ladder[-1])
        above = [(self.ladder[-2], self.kv_ladder[-1])] if len(self.ladder) > 1 else []
        above += [(self.ladder[-1], self.kv_ladder[-2])] if len(self.kv_ladder) > 1 else []
        return not any(r.status == "unknown" or r.status == "slow" and r.speed.decode_tokens_per_s
                       >= last.speed.decode_tokens_per_s for r in (self.rung(*n) for n in above))

    def most(self, est: Estimate) -> int | None:
        """Max context per sequence: the estimator's on-GPU solve, or a search in RAM for a CPU-only box (each
        solved once per rung: options on the same machine share the probe)."""
        key = (est.quant, est.kv_type, est.placement)
        if key not in self.reach:
            self.reach[key] = self._most(est)
        return self.reach[key]

    def most_bound(self, est: Estimate) -> int:
        """An upper bound on `most(est)`, without solving: the cache of the full-context layers grows by
        est.kv_bytes_per_token per cell, there are at least as many cells as tokens over all sequences, and it
        shares the memory with the weights (all but the token embeddings, which may stay in RAM); windows, states
        and buffers only add. The model's own limit caps it, as it caps `most`."""
        cap = per_sequence_context(est.model_max_context, self.engine)
        growth = est.kv_bytes_per_token * self.targets.concurrency
        if self.wanted == "experts":
            # the whole cache is on the GPUs beside every weight but the routed experts (which alone go to RAM) and
            # the token embeddings (which stay there)
            held, known = self._gpu_memory
            if not known or growth <= 0:
                return cap
            layout = self.layout(est.quant)
            experts = sum(layout.expert_layer_bytes)
            dense = layout.total_bytes - layout.token_embd_bytes - experts
            ram = self.machine.ram_usable_bytes
            if ram is not None:  # the experts the RAM cannot hold beside the token embeddings stay on the GPUs
                dense += max(0, experts - max(0, ram - layout.token_embd_bytes))
            gpus = [u for u in est.devices if not u.host]
            if self.placed(est) and gpus and all(u.usable_bytes is not None for u in gpus):
                # est runs here at est.context: from there the GPUs' usable memory (the engine's own figure) less
                # their compute and overhead at est (which never shrink as the context grows) and the whole cache
                # at est (which grows by at least `growth` per token) bounds the tokens to come
                room = sum(u.usable_bytes - u.compute_bytes - u.overhead_bytes for u in gpus) - dense - est.kv_bytes
                start = per_sequence_context(est.context, self.engine)
                return min(cap, start + max(0, room + BOUND_SLACK_BYTES) // growth + 1)
            return min(cap, max(0, held - dense + BOUND_SLACK_BYTES) // growth + 1)
        if self.wanted == "gpu":  # a GPU option has GPUs
            held, known = self._gpu_memory
        else:
            held = max(self.machine.ram_total_bytes or 0, self.machine.ram_usable_bytes or 0)
            known = self.machine.ram_usable_bytes is not None
        if not known or growth <= 0:
            return cap
        room = held - (est.weights_bytes - est.token_embd_bytes) + BOUND_SLACK_BYTES
        return min(cap, max(0, room) // growth + 1)

    def holds(self, est: Estimate, tokens: int) -> bool:
        """Whether every sequence holds `tokens` at est's rung, as `most` asks it (`most(est)` >= tokens exactly
        when this holds: memory never shrinks as the context grows)."""
        ctx = engine_context(tokens, self.engine)
        if self.wanted == "gpu":
            return self.fits_on(est.quant, est.kv_type, ctx)
        return self.placed(self.run(est.quant, est.kv_type, ctx))

    def _most(self, est: Estimate) -> int | None:
        if self.wanted == "gpu":
            r = self.rungs.get((est.quant, est.kv_type))
            held = r is not None and r.est is not None  # _try saw the rung fit the GPUs at the context
            key = ("most", est.quant, est.kv_type, self.context, held, self.memory_key)
            if key not in self.memory_of:
                self.memory_of[key] = search_terms(
                    self.model.profile, est.quant, KVChoice(est.kv_type, est.kv_type), self.engine, self.context,
                    self.machine, self.quants, self.model.weights, solve_max_context=True,
                    fits_at=self.context if held else None)[1]
            total = self.memory_of[key]
        else:  # CPU-only, or a MoE box: the largest context that still runs there
            fits = lambda ctx: self.placed_at(est.quant, est.kv_type, ctx)  # noqa: E731
            start = self.context if self.placed(est) else 0
            hi = max(self.context, est.model_max_context)
            hi = max(start, min(hi, engine_context(self.most_bound(est), self.engine)))  # bracketed by the bound
            total = _largest_fitting(fits, start, hi)
        return None if not total else per_sequence_context(total, self.engine)


@record
class _Pending:
    """A rung chosen on an option, not yet priced nor its max context solved (`_finish` does both)."""

    meets: bool
    why: str
    rung: _Rung


def evaluate(option: Option, model: Model, targets: Targets, econ: Economics, quants: QuantTable,
             power_model: PowerModel, apis: list[ApiPrice], exhaustive: bool = False,
             probe: _Probe | None = None) -> Candidate:
    """The option's candidate (`_select`, then `_finish`)."""
    p = probe if probe is not None else _Probe(option, model, targets, quants)
    chosen = _select(option, targets, p, exhaustive)
    return chosen if isinstance(chosen, Candidate) else _finish(option, p, chosen, econ, power_model, apis)


def _finish(option: Option, p: _Probe, chosen: _Pending, econ: Economics, power_model: PowerModel,
            apis: list[ApiPrice], max_context: int | None = None, solve: bool = True) -> Candidate:
    """The chosen rung priced, with its max context solved (`solve`), else with `max_context` as given."""
    r = chosen.rung
    reach = p.most(r.est) if solve else max_context
    return _priced(option, chosen.meets, chosen.why, r.est, reach, r.speed, econ, power_model, apis)


def _select(option: Option, targets: Targets, p: _Probe, exhaustive: bool = False) -> Candidate | _Pending:
    """The option's candidate: the first rung of the ladder (weights high to low, within each the KV cache high to
    low) that holds the context and reaches the speed, priced; else the fastest rung that holds the context; else
    how close the leanest one comes.

    Memory only shrinks and speed only grows down each ladder, so the rungs that meet the targets are a tail of each:
    a bisection over the weights finds the first in a few estimates (`exhaustive` walks every rung from the top, the
    reference the tests hold it to). A candidate that holds the context comes back as a `_Pending`."""
    ladder, kv_ladder = p.ladder, p.kv_ladder

    def slow(q, kv, r: _Rung) -> str:
        return f"{q} + {kv} KV decodes {r.decode:.1f} tok/s"

    def met(r: _Rung, rejected: str | None) -> _Pending:
        why = ("the highest precision that holds the context and reaches the speed"
               + (f"; one step up, {rejected}" if rejected else ""))
        return _Pending(True, why, r)

    def too_slow(r: _Rung) -> _Pending:
        return _Pending(False, f"too slow (needs {targets.min_tokens_per_s:g} tok/s)", r)

    def short(q: str | None, kv: str | None, rejected: str | None) -> Candidate:
        if q is None:
            return Candidate(option, False, f"even the smallest weights do not fit ({rejected})" if rejected
                             else "no memory")
        est = p.run(q, kv, p.context)
        reach = p.most(est)
        why = (f"holds at most {reach:,} tokens at {q} + {kv} KV" if reach else f"{q} + {kv} KV does not fit")
        if p.wanted == "gpu" and est.placement == "gpu+cpu":
            why += " on the GPU (the rest would spill to RAM)"
        return Candidate(option, False, why, q, kv, est.placement, False, reach, weights_bytes=est.weights_bytes,
                         kv_bytes=est.kv_bytes, deployment=est.deployment)

    def rejected_before(i: int, j: int) -> str | None:
        """What the walk from the top rejected last before rung (ladder[i], kv_ladder[j]), the first that meets: a
        slower cache of this weight type, else the weight type above (too heavy, too slow, or holding too little)."""
        q = ladder[i]
        last = next((slow(q, kv, p.rung(q, kv)) for kv in reversed(kv_ladder[:j]) if p.rung(q, kv).status == "slow"),
                    None)
        if last is None and i > 0:
            up = ladder[i - 1]
            r = p.rung(up, kv_ladder[-1])
            last = (p.heavy(up) if r.status == "heavy" else slow(up, kv_ladder[-1], r)
                    if r.status == "slow" else f"{up} does not hold {targets.context:,} tokens")
        return last

    if not exhaustive and p.monotone():
        # the first rung from the top that fits (a memory check each, no estimate): a small or sparse model meets
        # there. What fits is a tail of each ladder, so the first weight type whose leanest cache fits is bisected
        # for, then its caches walked: the rung the walk from the top finds
        first = _first_fitting(p)
        if first is not None and p.rung(ladder[first[0]], kv_ladder[first[1]]).status == "fast":
            return met(p.rung(ladder[first[0]], kv_ladder[first[1]]), rejected_before(*first))
        last = p.rung(ladder[-1], kv_ladder[-1])  # the leanest rung: the least memory, the most speed
        if last.status == "heavy":  # every weight type is heavier still
            return short(None, None, p.heavy(ladder[-1]))
        if last.status == "nofit":  # nothing holds the context
            return short(ladder[-1], kv_ladder[-1], None)
        if last.status == "slow" and p.fastest_is_leanest():  # nothing is faster
            return too_slow(last)
        if last.status == "fast":
            lo, hi = 0, len(ladder) - 1  # the first weight type whose leanest cache meets: ladder[hi] does
            while lo < hi:
                mid = (lo + hi) // 2
                if p.rung(ladder[mid], kv_ladder[-1]).status == "fast":
                    hi = mid
                else:
                    lo = mid + 1
            q = ladder[hi]
            j = next(j for j, kv in enumerate(kv_ladder) if p.rung(q, kv).status == "fast")
            if not any(r.status == "unknown" for r in p.rungs.values()):
                return met(p.rung(q, kv_ladder[j]), rejected_before(hi, j))
    # every rung from the top, in order
    rejected: list[str] = []
    fastest: _Rung | None = None  # holds the context, too slow
    smallest: tuple[str, str] | None = None  # the leanest combination whose weights fit: for "how close"
    for q in ladder:
        if p.weights(q) > p.budget:
            rejected.append(p.heavy(q))
            continue
        smallest = (q, kv_ladder[-1])
        for kv in kv_ladder:
            r = p.rung(q, kv)
            if r.status == "nofit":
                continue
            if r.status == "unknown":
                rejected.append(f"{q}: decode speed unknown")
                break
            if r.status == "fast":
                return met(r, rejected[-1] if rejected else None)
            rejected.append(slow(q, kv, r))
            if fastest is None or r.speed.decode_tokens_per_s > fastest.speed.decode_tokens_per_s:
                fastest = r
        else:
            if not any(x.startswith(q) for x in rejected):
                rejected.append(f"{q} does not hold {targets.context:,} tokens")
    if fastest is not None:
        return too_slow(fastest)
    if smallest is None:
        return short(None, None, rejected[-1] if rejected else None)
    return short(*smallest, None)


def _first_fitting(p: _Probe) -> tuple[int, int] | None:
    """(weight index, KV index) of the first rung in ladder order (weights high to low, within each the cache high
    to low) that is not "nofit", as walking them all finds it. On GPUs, memory shrinks down both ladders
    (`monotone`), so the weight types whose leanest cache fits are a tail of the weight ladder: a bisection on the
    memory check alone (no estimate) finds where it starts, and the walk confirms the rung it lands on."""
    ladder, kv_ladder = p.ladder, p.kv_ladder
    walk = lambda start: next(((i, j) for i, q in enumerate(ladder) if i >= start and p.weights(q) <= p.budget  # noqa: E731
                               for j, kv in enumerate(kv_ladder) if p.rung(q, kv).status != "nofit"), None)
    # on GPUs the memory check alone; elsewhere (experts in RAM, CPU-only) each check is an estimate, so the
    # bisection saves estimates rather than checks
    fits = (lambda q: p.fits_gpus(q, kv_ladder[-1])) if p.wanted == "gpu" else \
        (lambda q: p.rung(q, kv_ladder[-1]).status not in ("heavy", "nofit"))  # noqa: E731
    lo = next((i for i, q in enumerate(ladder) if p.weights(q) <= p.budget), len(ladder))
    hi = len(ladder) - 1
    if lo > hi or not fits(ladder[hi]):
        return walk(lo)  # none fits: the walk says so
    while lo < hi:  # ladder[hi] fits with its leanest cache
        mid = (lo + hi) // 2
        if fits(ladder[mid]):
            hi = mid
        else:
            lo = mid + 1
    return walk(lo)  # the weight types above do not fit at all: the walk from here is the walk from the top


def _largest_fitting(fits, lo: int, hi: int) -> int:
    """The largest context in [lo, hi] that fits, to CONTEXT_SEARCH_FLOOR tokens: hi itself when it fits, else the
    largest multiple of CONTEXT_SEARCH_FLOOR that does (lo when none above it does; lo fits or is 0). Memory never
    shrinks as the context grows, so bisect, on that grid: the answer is the same whatever bound made hi."""
    if fits(hi):
        return hi
    below, above = lo // CONTEXT_SEARCH_FLOOR, (hi - 1) // CONTEXT_SEARCH_FLOOR + 1  # grid steps: fits, does not
    while above - below > 1:
        mid = (below + above) // 2
        if fits(mid * CONTEXT_SEARCH_FLOOR):
            below = mid
        else:
            above = mid
    return max(lo, below * CONTEXT_SEARCH_FLOOR)


def _priced(option: Option, meets: bool, why: str, est: Estimate, max_context: int | None, speed, econ: Economics,
            power_model: PowerModel, apis: list[ApiPrice]) -> Candidate:
    notes = list(speed.notes)
    decode, prefill = speed.decode_tokens_per_s, speed.prefill_tokens_per_s
    power = system_power(est, option.machine, power_model, speed.compute_share, speed.gpu_busy_share)
    if est.deployment is not None and est.deployment.why:
        notes.append(est.deployment.why)
    base = dict(quant=est.quant, kv_type=est.kv_type, placement=est.placement, holds_context=True, deployment=est.deployment,
                max_context=max_context, decode_tokens_per_s=decode, prefill_tokens_per_s=prefill,
                weights_bytes=est.weights_bytes, bits_per_weight=est.bits_per_weight, kv_bytes=est.kv_bytes,
                watts=power.decode_watts)
    prefill_watts = power.prefill_watts
    if prefill is None:  # input tokens can never cost more energy than decoding them one by one
        prefill, prefill_watts = decode, power.decode_watts
    busy = busy_hours(econ.tokens_per_day, econ.input_share, prefill, decode)
    if busy > 24:
        notes.append(f"{econ.tokens_per_day:,.0f} tokens/day needs {busy:.0f} h a day on one machine")
    if option.rental is not None:  # the rent pays for the power
        rent = busy * DAYS_PER_MONTH * option.rent_per_hour
        return Candidate(option, meets, why, monthly_rent=rent, busy_hours_per_day=busy, tco=rent * econ.months,
                         notes=tuple(notes), **base)
    if power.decode_watts is None:
        notes += power.notes
        return Candidate(option, meets, why, busy_hours_per_day=busy, notes=tuple(notes), **base)
    local = LocalRun(kwh_price=econ.kwh_price, watts_decode=power.decode_watts, watts_prefill=prefill_watts,
                     watts_idle=power.idle_watts or 0.0, decode_tokens_per_s=decode, prefill_tokens_per_s=prefill)
    usage = Usage(econ.tokens_per_day, econ.input_share, option.price, econ.years)
    energy = usage.tokens_per_month / TOKENS_PER_UNIT * local.marginal_per_1m(econ.input_share)
    tco = None if option.price is None else option.price + energy * econ.months
    api = payback = even = None
    comparisons = [(a, compare(local, usage, a.name, a.input_usd_per_1m * econ.fx,
                               None if a.output_usd_per_1m is None else a.output_usd_per_1m * econ.fx)) for a in apis]
    comparisons = [(a, c) for a, c in comparisons if c.api_per_month is not None]
    if comparisons:
        a, c = min(comparisons, key=lambda ac: ac[1].api_per_month)  # the cheapest API: the hardest to beat
        api, payback, even = a.name, c.payback_months, c.breakeven_tokens_per_month
    table = tuple({"api": c.name, "api_per_month": c.api_per_month, "monthly_savings": c.monthly_savings,
                   "payback_months": c.payback_months, "breakeven_tokens_per_month": c.breakeven_tokens_per_month}
                  for _, c in comparisons)
    return Candidate(option, meets, why, monthly_energy_cost=energy, busy_hours_per_day=busy, tco=tco, api=api,
                     payback_months=payback, breakeven_tokens_per_month=even, comparisons=table, notes=tuple(notes),
                     **base)


# ---------------------------------------------------------------- the search and the ranking


@record
class Plan:
    targets: Targets
    economics: Economics
    candidates: tuple[Candidate, ...]  # every option evaluated, in option order
    notes: tuple[str, ...] = ()
    # options not evaluated because a smaller count of the same card, evaluated, is cheaper and at least as good on
    # everything (search(prune=True)): each with whether it meets the targets
    skipped: tuple[tuple[Option, bool], ...] = ()

    def meeting(self) -> list[Candidate]:
        return [c for c in self.candidates if c.meets_targets and within_budget(c, self.targets.budget)]

    def options_searched(self) -> tuple[int, int]:
        """(to buy, to rent): every option, evaluated or skipped."""
        options = [c.option for c in self.candidates] + [o for o, _ in self.skipped]
        buy = sum(1 for o in options if o.kind == "buy")
        return buy, len(options) - buy

    def skipped_meeting(self) -> int:
        """Skipped options that meet the targets within the budget (all bought: only bought counts are skipped)."""
        b = self.targets.budget
        return sum(1 for o, meets in self.skipped
                   if meets and (b is None or o.price is not None and o.price <= b))


# A sum of the same terms in another order differs in its last bits: speeds this close are the same speed.
RELATIVE_NOISE = 1e-9


@dataclass(eq=False)
class _Skip:
    """An option the search put off without evaluating it whole, and why."""

    index: int
    option: Option
    probe: _Probe
    by: Candidate | None  # the evaluated smaller count that is cheaper and no worse; None: it does not meet
    meets: bool
    decode_bound: float  # the fastest the option could decode (all sequences)
    tp: int = 1  # the tensor-parallel degree it would run at
    leanest: str = ""  # put off: the status of its leanest rung ("slow": it holds the context, too slowly)
    cross: bool = False  # hidden by an option of another card, or over the budget (not by fewer of its own card)


@dataclass
class _Card:
    """What the search has learnt of one bought GPU over its counts so far, per tensor-parallel degree (the speed of a
    rung on a pipeline of more of the same GPU, at the same tensor-parallel degree, is the same: its stages take
    turns over the same bytes and layers)."""

    holders: list = field(default_factory=list)  # (tp, Candidate): evaluated counts that hold the context
    speeds: dict = field(default_factory=dict)  # (tp, quant, kv) -> decode tokens/s, all sequences
    fits_from: dict = field(default_factory=dict)  # (tp, quant, kv) -> the fewest GPUs seen to hold it
    varies: set = field(default_factory=set)  # tp degrees where a larger count decoded faster: learn nothing

    def learn(self, tp: int, count: int, probe: _Probe) -> None:
        for (q, kv), r in probe.rungs.items():
            if r.status not in ("fast", "slow"):
                continue
            key, decode = (tp, q, kv), r.speed.decode_tokens_per_s
            if key in self.speeds and decode > self.speeds[key] * (1 + RELATIVE_NOISE):
                self.varies.add(tp)
            self.speeds[key] = max(decode, self.speeds.get(key, decode))
            self.fits_from[key] = min(count, self.fits_from.get(key, count))

    def status(self, tp: int, probe: _Probe, q: str, kv: str) -> tuple[str, float | None]:
        """A rung's status on the option `probe` is for, and its decode tokens/s (all sequences), from what is known
        (it fits at fewer GPUs: it fits here, at the same speed), else estimated."""
        if probe.weights(q) > probe.budget or probe.cannot_fit(q):
            return "nofit", None
        key = (tp, q, kv)
        if self.fits_from.get(key, probe.option.count + 1) <= probe.option.count:
            decode = self.speeds[key]
            meets = decode / probe.targets.concurrency >= probe.targets.min_tokens_per_s
            return ("fast" if meets else "slow"), decode
        r = probe.rung(q, kv)
        return ("nofit" if r.status == "heavy" else r.status), (r.speed.decode_tokens_per_s if r.speed else None)


def search(options: list[Option], model: Model, targets: Targets, econ: Economics, quants: QuantTable,
           power_model: PowerModel, apis: list[ApiPrice], notes: list[str] = (), prune: bool = False,
           closest_n: int = CLOSEST_SHOWN) -> Plan:
    """`_search` with the cyclic garbage collector paused: the search makes hundreds of thousands of short-lived,
    acyclic objects (freed by reference counting), and the collector's passes over them were a fifth of its time
    (llama-4-scout over 1,728 options: 0.75 s with it, 0.59 s without)."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        return _search(options, model, targets, econ, quants, power_model, apis, notes, prune, closest_n)
    finally:
        if paused:
            gc.enable()


def _search(options: list[Option], model: Model, targets: Targets, econ: Economics, quants: QuantTable,
            power_model: PowerModel, apis: list[ApiPrice], notes: list[str] = (), prune: bool = False,
            closest_n: int = CLOSEST_SHOWN) -> Plan:
    """Every option evaluated (`Plan.candidates`, in option order). With `prune`, counts of a bought GPU that a
    smaller count of it dominates whatever they would be are left out unevaluated (`Plan.skipped`): what `ranked`
    and `closest` show is the same as without (tests hold it), only `ranked(show_all=True)` would differ."""
    if targets.context < 1 or targets.concurrency < 1 or targets.max_gpus < 1:
        raise UsageError("context, concurrency and max GPUs must be at least 1")
    if targets.min_tokens_per_s < 0:
        raise UsageError("the speed target must not be negative")
    if targets.min_quant is not None:  # checked once, and named as the engine spells it
        targets = replace(targets, min_quant=weight_ladder(model, targets)[-1])
    notes = list(notes)
    limit = model.profile.max_context
    if targets.context > limit:
        notes.append(f"{model.profile.id} is trained for {limit:,} tokens; planned at {targets.context:,} as asked "
                     f"(quality beyond the trained length is not assured: a long-context release is the safer pick)")
        model = replace(model, profile=replace(model.profile, max_context=targets.context))
    settings = EngineSettings(name=targets.engine, parallel=targets.concurrency)
    cap = per_sequence_context(engine_context(model.profile.max_context, settings), settings)  # the model's own
    weights_of: dict[str, WeightsLayout] = {}
    kv_bytes_of: dict[str, int] = {}
    memory_of: dict[tuple, object] = {}  # _Probe.memory_of, shared by every option of this search
    done: list[tuple[int, Candidate]] = []
    cards: dict[str, _Card] = {}
    skipped: list[_Skip] = []
    tp_of = _tensor_parallel(model, targets, quants) if prune else None

    frontier: list[Candidate] = []  # evaluated, bought, priced, meeting within the budget: what can hide others
    # an option of these may have no cost of ownership: fewer of its card (or the same chip) hides it, not the cost
    # (`dominates`), so no option of theirs is hidden by another card's (it could be what hides that one)
    unpriced = {o.spec.id for o in options if o.kind == "buy" and o.price is None}

    def visit(i: int, o: Option, probe: _Probe, defer: bool) -> None:
        # (a MoE box is no card: a second GPU keeps more experts, and decodes faster at the same rung)
        card = (cards.setdefault(_card_key(o), _Card()) if prune and o.kind == "buy" and o.spec.kind == "gpu"
                and not o.experts_in_ram else None)
        tp = tp_of(o.machine) if card is not None else 1
        if defer and frontier and o.kind == "buy" and not within_budget_price(o.price, targets.budget):
            # over the budget while something within it meets: never shown, never counted
            skipped.append(_Skip(i, o, probe, None, False, 0.0, tp, "over budget", cross=True))
        elif card is not None and tp not in card.varies and (skip := next(
                (s for t, k in card.holders if t == tp and (s := _dominated(i, o, k, probe, card, tp, cap)) is not None),
                None)) is not None:
            skipped.append(skip)
        elif defer and probe.monotone() and (lean := _leanest(probe, card, tp)) in ("heavy", "nofit", "slow"):
            # its leanest rung, its fastest and smallest, does not meet: it matters only if nothing does
            skipped.append(_Skip(i, o, probe, None, False, 0.0, tp, lean))
        else:
            chosen = _select(o, targets, probe)
            c = None
            if isinstance(chosen, Candidate):
                c = chosen
            elif defer and chosen.meets and o.kind == "buy" and o.spec.id not in unpriced:
                # priced with a bound on its context: when a cheaper option evaluated already beats that, it beats
                # the option whatever its context, and the max-context solve is not needed
                est, decode = chosen.rung.est, chosen.rung.speed.decode_tokens_per_s
                holds = lambda n: probe.holds(est, n)  # noqa: E731
                may_hide = card is not None and probe.most_bound(est) >= cap and holds(cap)
                if not may_hide and power_known_whatever_runs(o.machine) and (by := _hider(
                        o.price, decode, est.bits_per_weight, frontier, probe.most_bound(est), holds)) is not None:
                    # hidden at its price, a lower bound on its cost of ownership (its energy costs no less than
                    # nothing): not priced at all
                    skipped.append(_Skip(i, o, probe, by, True, decode * (1 + RELATIVE_NOISE), tp, cross=True))
                    if card is not None:
                        card.learn(tp, o.count, probe)
                    return
                c = _finish(o, probe, chosen, econ, power_model, apis, None, solve=False)
                if (by := _hider(c.tco, c.decode_tokens_per_s, c.bits_per_weight, frontier, probe.most_bound(est),
                                 holds)) is not None:
                    skipped.append(_Skip(i, o, probe, by, True, c.decode_tokens_per_s * (1 + RELATIVE_NOISE), tp,
                                         cross=True))
                    if may_hide:
                        # it may hide more of its card (`_dominated`, which needs the whole context held): solved
                        # as an evaluated option is (quick when the model's limit fits); if it hides one,
                        # `_might_hide_more` asks of both skips alike
                        card.holders.append((tp, replace(c, max_context=probe.most(est))))
                    c = None
                else:
                    c = replace(c, max_context=probe.most(chosen.rung.est))
                if c is None:
                    if card is not None:
                        card.learn(tp, o.count, probe)
                    return
            else:
                c = _finish(o, probe, chosen, econ, power_model, apis)
            done.append((i, c))
            if card is not None and c.decode_tokens_per_s is not None:
                card.holders.append((tp, c))
            if c.option.kind == "buy" and c.meets_targets and within_budget(c, targets.budget) and \
                    c.tco is not None and c.decode_tokens_per_s is not None:
                _add_frontier(frontier, c)
        if card is not None:
            card.learn(tp, o.count, probe)

    # cheapest first, so that what can hide the dearer options is known when they come; the counts of one card stay
    # in order (what the skips of a card assume); identical machines (a rental and the same GPUs bought) share what
    # was estimated on them
    order = sorted(range(len(options)), key=lambda i: (options[i].kind != "buy", options[i].price is None,
                                                        options[i].price or 0.0, i))
    machines: dict[tuple, _Probe] = {}
    for i in order:
        o = options[i]
        probe = _Probe(o, model, targets, quants, weights_of, kv_bytes_of, memory_of)
        key = (o.spec.id, o.count, o.memory_gib, o.ram_kit.id if o.ram_kit else None)
        if (seen := machines.get(key)) is not None and seen.machine == o.machine:
            probe.share(seen)
        else:
            machines[key] = probe
        visit(i, o, probe, defer=prune)
    if not any(c.meets_targets and within_budget(c, targets.budget) for _, c in done):
        # nothing meets: what comes closest is shown (`closest`), so the options put off are evaluated, skipped
        # where dominated: those that hold the context first, then, unless they fill the list, those that do not
        for held in (True, False):
            later = [s for s in skipped if s.by is None and (s.leanest == "slow") == held]
            if not held and all(len([c for c in undominated([c for _, c in done if within_budget(c, b)])
                                     if c.holds_context]) >= closest_n for b in (targets.budget, None)):
                break
            skipped[:] = [s for s in skipped if s not in later]
            for s in later:
                visit(s.index, s.option, s.probe, defer=False)
    # Evaluated after all: the skips of a card where a larger count turned out faster at the same rung (what the
    # skips assumed it never is), and, as b dominating a and a dominating c imply b dominates c but for the speed
    # tie, a skipped option that could be faster than the one that hides it by a share that matters for another
    late = [s for s in skipped if not s.cross and _card_key(s.option) in cards and s.tp in cards[_card_key(s.option)].varies]
    while True:
        if not late:
            ties = sorted(c.decode_tokens_per_s * (1 - SPEED_TIE_FRACTION) for _, c in done
                          if c.option.kind == "buy" and c.decode_tokens_per_s is not None)
            late = [s for s in skipped if _might_hide_more(s, ties)]
            if not late:
                break
        for s in late:
            skipped.remove(s)
            done.append((s.index, evaluate(s.option, model, targets, econ, quants, power_model, apis, probe=s.probe)))
        late = []
    cands = tuple(c for _, c in sorted(done, key=lambda ic: ic[0]))
    return Plan(targets, econ, cands, tuple(notes), tuple((s.option, s.meets) for s in skipped))


def _card_key(o: Option) -> tuple:
    """What the skips of a card learn over its counts: the card, and a MoE box's RAM (another machine entirely)."""
    return o.spec.id, o.ram_kit.id if o.ram_kit else None


def _leanest(probe: _Probe, card: _Card | None, tp: int) -> str:
    """The status of the option's leanest rung: from a smaller count of the card when one held it, else estimated."""
    q, kv = probe.ladder[-1], probe.kv_ladder[-1]
    return card.status(tp, probe, q, kv)[0] if card is not None else probe.rung(q, kv).status


def _tensor_parallel(model: Model, targets: Targets, quants: QuantTable):
    """machine -> the tensor-parallel degree the engine deploys the model with there (it depends on the GPUs, not on
    the weight or cache types)."""
    eng = engines.get(targets.engine)
    settings = EngineSettings(name=targets.engine, parallel=targets.concurrency)
    quant = weight_ladder(model, targets)[0]
    kv = KVChoice(eng.kv_ladder[0], eng.kv_ladder[0])
    context = engine_context(targets.context, settings)
    return lambda machine: search_terms(model.profile, quant, kv, settings, context, machine, quants,
                                        model.weights)[0].tp


def _dominated(index: int, o: Option, k: Candidate, probe: _Probe, card: _Card, tp: int, cap: int) -> _Skip | None:
    """A skip when `k` (fewer of the same card, evaluated, at the same tensor-parallel degree) dominates option `o`
    whatever `o` would be: `o` costs more than all of `k`'s cost of ownership; `k` already holds the model's whole
    context; `o` cannot hold better weights (the rung one step above `k`'s does not fit on `o` or is too slow) and
    decodes no faster (at `k`'s rung, or at its leanest, its fastest, when `k` is too slow). None: evaluate it."""
    if k.option.count >= o.count or k.max_context is None or k.max_context < cap or not probe.monotone():
        return None
    if k.tco is not None:  # then o's cost of ownership is at least its price: more than k's
        if o.price is None or not o.price > k.tco:
            return None
    elif o.price is not None:  # k's tco is unknown for another reason than its price: o's might be known
        return None
    ladder, kv_ladder = probe.ladder, probe.kv_ladder
    if k.quant not in ladder or k.kv_type not in kv_ladder:
        return None
    if k.meets_targets:
        i = ladder.index(k.quant)
        if i > 0 and card.status(tp, probe, ladder[i - 1], kv_ladder[-1])[0] not in ("nofit", "slow"):
            return None  # o may hold better weights
        bound = card.speeds.get((tp, k.quant, k.kv_type))  # o meets at k's rung, at k's speed
    else:  # k holds the context, too slow: o's leanest rung is its fastest, unless one as fast holds more
        lean = (tp, ladder[-1], kv_ladder[-1])
        if card.fits_from.get(lean, o.count + 1) > k.option.count:
            return None
        bound = card.speeds[lean]
        above = [(ladder[-2], kv_ladder[-1])] if len(ladder) > 1 else []
        above += [(ladder[-1], kv_ladder[-2])] if len(kv_ladder) > 1 else []
        for q, kv in above:
            status, decode = card.status(tp, probe, q, kv)
            if status != "nofit" and not (status == "slow" and decode < bound):
                return None
    if bound is None:
        return None
    bound *= 1 + RELATIVE_NOISE
    if not k.decode_tokens_per_s >= bound * (1 - SPEED_TIE_FRACTION):
        return None
    return _Skip(index, o, probe, k, k.meets_targets, bound, tp)


def _might_hide_more(s: _Skip, ties: list[float]) -> bool:
    """Whether the skipped option could dominate an evaluated one that the option hiding it does not: one whose
    speed tie (decode x (1 - SPEED_TIE_FRACTION), `ties` sorted) the option's bound reaches and the hider's not."""
    if s.by is None:
        return False
    k = s.by.decode_tokens_per_s
    return s.decode_bound > k and bisect_right(ties, s.decode_bound) > bisect_right(ties, k)


def _hider(tco: float | None, decode: float | None, bits: float | None, frontier: list[Candidate], bound: int,
           holds) -> Candidate | None:
    """An option of `frontier` strictly cheaper to own than a candidate of this cost of ownership, decode speed and
    bits per weight that dominates it, whatever its max context (`bound` at most; `holds(tokens)`: whether it holds
    that many): None when none does. Strictly cheaper, so that whatever the candidate would hide, it hides too but
    for the speed tie (`_might_hide_more`).

    A lower bound on `tco` (the price alone) hides no candidate the full cost would not: more options are then
    strictly cheaper, and the one chosen (the most context) holds no less."""
    if tco is None or decode is None:
        return None
    # `dominates(b, c)` on every term but the context, for b strictly cheaper (so "better somewhere" holds) and of
    # the frontier (its cost and speed known): as fast but for the tie, and weights no coarser. Written out, as the
    # search asks it ~80,000 times
    floor, bits = decode * (1 - SPEED_TIE_FRACTION), bits or 0.0
    best, most = None, None
    for b in frontier:
        if b.tco < tco and b.decode_tokens_per_s >= floor and (b.bits_per_weight or 0.0) >= bits:
            key = (b.max_context or 0, b.decode_tokens_per_s)
            if best is None or key > most:  # the first of the largest, as max() takes it
                best, most = b, key
    if best is None:
        return None
    reach = best.max_context or 0
    if reach and (reach >= bound or not holds(reach + 1)):
        return best  # c holds no more than `best`
    return None


def _covers(b: Candidate, f: Candidate) -> bool:
    """b hides whatever f hides in `_hider`: no costlier, no slower, holding no less and no coarser weights."""
    return (b.tco <= f.tco and b.decode_tokens_per_s >= f.decode_tokens_per_s
            and (b.max_context or 0) >= (f.max_context or 0) and (b.bits_per_weight or 0.0) >= (f.bits_per_weight or 0.0))


def _add_frontier(frontier: list[Candidate], c: Candidate) -> None:
    """Keep `frontier` to the options no other in it covers (what `_hider` looks through)."""
    if any(_covers(f, c) for f in frontier):
        return
    frontier[:] = [f for f in frontier if not _covers(c, f)]
    frontier.append(c)


def within_budget_price(price: float | None, budget: float | None) -> bool:
    """A purchase price within the budget (an unknown price cannot be checked)."""
    return budget is None or price is not None and price <= budget


def within_budget(c: Candidate, budget: float | None) -> bool:
    """Bought: a known price at most the budget (an unknown price cannot be checked). Rented: rent over the years."""
    if budget is None:
        return True
    cost = c.option.price if c.option.kind == "buy" else c.tco
    return cost is not None and cost <= budget


def dominates(b: Candidate, a: Candidate) -> bool:
    """b is no costlier than a, at least as good on every target (speed, context) and in weight precision, and
    better somewhere (a dearer option that runs a better quant stays: that is a trade a buyer may want).
    Without prices, fewer of the same card bought costs less: 1x H100 beats 2x H100 that is no faster."""
    if b.decode_tokens_per_s is None or a.decode_tokens_per_s is None:
        return False
    bc, ac = b.max_context or 0, a.max_context or 0
    if b.tco is not None and a.tco is not None:
        cheaper, no_costlier = b.tco < a.tco, b.tco <= a.tco
    elif b.option.kind == a.option.kind == "buy" and b.option.spec.id == a.option.spec.id:
        cheaper, no_costlier = b.option.count < a.option.count, b.option.count <= a.option.count
    else:
        return False
    bd, ad = b.decode_tokens_per_s, a.decode_tokens_per_s
    bq, aq = b.bits_per_weight or 0.0, a.bits_per_weight or 0.0
    no_worse = no_costlier and bd >= ad * (1 - SPEED_TIE_FRACTION) and bc >= ac and bq >= aq
    better = cheaper or bd > ad * (1 + SPEED_TIE_FRACTION) or bc > ac or bq > aq
    return no_worse and better


def undominated(cands: list[Candidate]) -> list[Candidate]:
    """Hide options that are costlier and worse on every target than another of the same kind (buy / rent).

    The same as asking every pair, asked only of the pairs where `dominates` can hold: with both costs of ownership
    known, those no costlier (sorted by it, a bisection finds them); else fewer of the same card bought."""
    by_kind: dict[str, list[tuple[float, int, Candidate]]] = {}
    same_card: dict[tuple[str, str], list[Candidate]] = {}
    for i, b in enumerate(cands):
        if b.decode_tokens_per_s is None:
            continue  # dominates nothing
        if b.tco is not None:
            by_kind.setdefault(b.option.kind, []).append((b.tco, i, b))
        if b.option.kind == "buy":
            same_card.setdefault(("buy", b.option.spec.id), []).append(b)
    for rows in by_kind.values():
        rows.sort(key=lambda row: (row[0], row[1]))
    costs = {kind: [row[0] for row in rows] for kind, rows in by_kind.items()}

    def hidden(a: Candidate) -> bool:
        if a.decode_tokens_per_s is None:
            return False
        if a.tco is not None:
            rows = by_kind.get(a.option.kind, [])
            if any(b is not a and dominates(b, a) for _, _, b in rows[:bisect_right(costs.get(a.option.kind, []),
                                                                                  a.tco)]):
                return True
            # b without a known cost: only fewer of the same card
            return any(b is not a and b.tco is None and dominates(b, a)
                       for b in same_card.get((a.option.kind, a.option.spec.id), ()))
        return any(b is not a and dominates(b, a) for b in same_card.get((a.option.kind, a.option.spec.id), ()))

    return [a for a in cands if not hidden(a)]


def sort_key(sort: str):
    if sort not in SORTS:
        raise UsageError(f"--sort must be one of {', '.join(SORTS)}")
    big = float("inf")

    def key(c: Candidate):
        decode = c.decode_tokens_per_s or 0.0
        by = {
            "tco": (c.tco if c.tco is not None else big, -decode),
            "price": (c.option.price if c.option.price is not None else big, c.tco or big),
            "speed": (-decode, c.tco if c.tco is not None else big),
            "context": (-(c.max_context or 0), c.tco if c.tco is not None else big),
            "watts": (c.watts if c.watts is not None else big, c.tco if c.tco is not None else big),
        }[sort]
        return by + (c.option.label,)

    return key


def ranked(plan: Plan, sort: str = "tco", show_all: bool = False) -> list[Candidate]:
    """What the table shows: the options that meet the targets within the budget, best first, dominated ones
    hidden unless `show_all` (which lists every option evaluated, the ones that meet first)."""
    key = sort_key(sort)
    if show_all:
        return sorted(plan.candidates, key=lambda c: (not c.meets_targets, not within_budget(c, plan.targets.budget),
                                                      key(c)))
    return sorted(undominated(plan.meeting()), key=key)


def closest(plan: Plan, n: int, budget: float | None = None) -> list[Candidate]:
    """When nothing meets the targets: the options that come nearest within `budget` (None: any price). First
    those that hold the context (fastest first), then those that hold the most context."""
    pool = undominated([c for c in plan.candidates if within_budget(c, budget)])
    holding = sorted((c for c in pool if c.holds_context), key=lambda c: -(c.decode_tokens_per_s or 0.0))
    short = sorted((c for c in pool if not c.holds_context and c.max_context),
                   key=lambda c: (-(c.max_context or 0), c.option.price or float("inf")))
    return (holding + short)[:n]
