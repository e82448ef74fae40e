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
from dataclasses import dataclass, field, replace

from advisor.sources.catalog import HardwareSpec
from advisor.core.deployment import Deployment
from advisor.core.cost import DAYS_PER_MONTH, MONTHS_PER_YEAR, TOKENS_PER_UNIT, LocalRun, Usage, busy_hours, compare
from advisor.errors import UsageError
from advisor.detect.simulated import simulated_machine
from advisor.core.hardware import Machine
from advisor import engines
from advisor.apps.estimate import engine_context, estimate, fits_on_gpus, per_sequence_context
from advisor.core.memory import EngineSettings, Estimate, KVChoice
from advisor.core.power import PowerModel, system_power
from advisor.sources.prices import ApiPrice, Rental
from advisor.core.formats import QuantTable
from advisor.core.model import ModelProfile
from advisor.core.speed import estimate_speed
from advisor.core.units import GIB
from advisor.core.tensors import WeightsLayout, weights_layout

# The precision ladders, best first, are each engine's (engine.weight_ladder / kv_ladder in advisor/engines): weight
# precision is given up before cache precision (a q8_0 cache is close to lossless, a lower weight type is not).
SORTS = ("tco", "price", "speed", "context", "watts")
# Speeds closer than this are a tie when one option hides another: the decode model's median error is 4.3%
# (README, measured against throughput.csv), so a smaller difference says nothing.
SPEED_TIE_FRACTION = 0.05
CLOSEST_SHOWN = 8  # options listed when nothing meets the targets (`closest`)
CONTEXT_SEARCH_FLOOR = 256  # CPU-only max context is bisected down to this many tokens


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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

    @property
    def kind(self) -> str:
        return "rent" if self.rental is not None else "buy"

    @property
    def memory_bytes(self) -> int:
        """What can hold the model: the accelerators' memory, or RAM on a CPU-only box."""
        if self.machine.gpus:
            return sum(d.usable_bytes or 0 for d in self.machine.gpus)
        return self.machine.ram_usable_bytes or 0


@dataclass(frozen=True)
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
        }


# ---------------------------------------------------------------- the options

# Words a table can drop from a marketed name without losing which part it is ("GeForce RTX 4090" -> "RTX 4090").
BRAND_WORDS = ("GeForce ", "Tesla ", "Instinct ", " Generation")


def short_name(spec: HardwareSpec) -> str:
    """The marketed name without brand words or parenthesised detail: "H100 SXM5 80GB", "M2 Ultra"."""
    name = re.sub(r"\s*\([^)]*\)", "", spec.name)
    for word in BRAND_WORDS:
        name = name.replace(word, "")
    return name.strip()



def purchase_options(catalog: tuple[HardwareSpec, ...], targets: Targets, fx: float) -> tuple[list[Option], list[str]]:
    """Every catalog entry as a machine to buy, and notes on what was left out."""
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
            out.append(Option(label, spec, 1, machine, size, price, basis))
    if gpu_only:
        notes.append(f"{targets.engine} needs a discrete GPU: Apple, unified-memory and CPU-only options left out")
    if skipped:
        notes.append(f"left out (memory size unknown): {', '.join(skipped)}")
    return out, notes


def rental_options(rentals: tuple[Rental, ...], find, targets: Targets, fx: float) -> tuple[list[Option], list[str]]:
    """Rental instances whose GPU the catalog knows (`find`: name -> HardwareSpec, raising UsageError)."""
    out, unknown = [], []
    for r in rentals:
        if r.usd_per_hour is None:
            continue
        try:
            spec = find(r.gpu)
        except UsageError:
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
                 weights_of: dict | None = None):
        self.option, self.model, self.targets, self.quants = option, model, targets, quants
        self.engine = EngineSettings(name=targets.engine, parallel=targets.concurrency)
        self.context = engine_context(targets.context, self.engine)  # every one of `concurrency` sequences holds it
        self.machine = option.machine
        eng = engines.get(targets.engine)
        self.ladder = weight_ladder(model, targets)
        self.kv_ladder = eng.kv_ladder
        self.wanted = "cpu" if not self.machine.gpus else "gpu"
        self.budget = option.memory_bytes
        self.weights_of = {} if weights_of is None else weights_of  # bytes per quant: the same for every option
        self.rungs: dict[tuple[str, str], _Rung] = {}

    def run(self, q: str, kv: str, ctx: int, solve: bool = False) -> Estimate:
        return estimate(self.model.profile, q, KVChoice(kv, kv), self.engine, ctx, self.machine, self.quants,
                        weights=self.model.weights, solve_max_context=solve)

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
        return bool(self.machine.gpus) and all(d.memory_total_bytes for d in self.machine.gpus) and \
            layout.total_bytes - layout.token_embd_bytes > held

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
        if self.wanted == "gpu" and not fits_on_gpus(self.model.profile, q, KVChoice(kv, kv), self.engine,
                                                     self.context, self.machine, self.quants, self.model.weights):
            return _Rung("nofit")
        est = self.run(q, kv, self.context)
        if est.placement != self.wanted:
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
        """Max context per sequence: the estimator's on-GPU solve, or a search in RAM for a CPU-only box."""
        if self.wanted == "gpu":
            total = self.run(est.quant, est.kv_type, self.context, solve=True).max_context
        else:
            fits = lambda ctx: self.run(est.quant, est.kv_type, ctx).placement == "cpu"  # noqa: E731
            start = self.context if est.placement == "cpu" else 0
            total = _largest_fitting(fits, start, max(self.context, est.model_max_context))
        return None if not total else per_sequence_context(total, self.engine)


def evaluate(option: Option, model: Model, targets: Targets, econ: Economics, quants: QuantTable,
             power_model: PowerModel, apis: list[ApiPrice], exhaustive: bool = False,
             probe: _Probe | None = None) -> Candidate:
    """The option's candidate: the first rung of the ladder (weights high to low, within each the KV cache high to
    low) that holds the context and reaches the speed, priced; else the fastest rung that holds the context; else
    how close the leanest one comes.

    Memory only shrinks and speed only grows down each ladder, so the rungs that meet the targets are a tail of each:
    a bisection over the weights finds the first in a few estimates (`exhaustive` walks every rung from the top, the
    reference the tests hold it to)."""
    p = probe if probe is not None else _Probe(option, model, targets, quants)
    ladder, kv_ladder = p.ladder, p.kv_ladder

    def slow(q, kv, r: _Rung) -> str:
        return f"{q} + {kv} KV decodes {r.decode:.1f} tok/s"

    def met(r: _Rung, rejected: str | None) -> Candidate:
        why = ("the highest precision that holds the context and reaches the speed"
               + (f"; one step up, {rejected}" if rejected else ""))
        return _priced(option, True, why, r.est, p.most(r.est), r.speed, econ, power_model, apis)

    def too_slow(r: _Rung) -> Candidate:
        why = f"too slow (needs {targets.min_tokens_per_s:g} tok/s)"
        return _priced(option, False, why, r.est, p.most(r.est), r.speed, econ, power_model, apis)

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
        # the walk from the top as far as rungs that do not fit take it (a memory check each, no estimate): a small
        # or sparse model meets at its first rung that fits
        first = next(((i, j) for i, q in enumerate(ladder) if p.weights(q) <= p.budget
                      for j, kv in enumerate(kv_ladder) if p.rung(q, kv).status != "nofit"), None)
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


def _largest_fitting(fits, lo: int, hi: int) -> int:
    """The largest context in [lo, hi] that fits, to CONTEXT_SEARCH_FLOOR tokens (lo fits or is 0; memory never
    shrinks as the context grows, so bisect)."""
    if fits(hi):
        return hi
    while hi - lo > CONTEXT_SEARCH_FLOOR:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


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


@dataclass(frozen=True)
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
    index: int
    option: Option
    probe: _Probe
    by: Candidate | None  # the evaluated smaller count that is cheaper and no worse; None: it does not meet
    meets: bool
    decode_bound: float  # the fastest the option could decode (all sequences)
    tp: int = 1  # the tensor-parallel degree it would run at
    leanest: str = ""  # put off: the status of its leanest rung ("slow": it holds the context, too slowly)


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
    done: list[tuple[int, Candidate]] = []
    cards: dict[str, _Card] = {}
    skipped: list[_Skip] = []
    tp_of = _tensor_parallel(model, targets, quants) if prune else None

    def visit(i: int, o: Option, probe: _Probe, defer: bool) -> None:
        card = cards.setdefault(o.spec.id, _Card()) if prune and o.kind == "buy" and o.spec.kind == "gpu" else None
        tp = tp_of(o.machine) if card is not None else 1
        if card is not None and tp not in card.varies and (skip := next(
                (s for t, k in card.holders if t == tp and (s := _dominated(i, o, k, probe, card, tp, cap)) is not None),
                None)) is not None:
            skipped.append(skip)
        elif defer and probe.monotone() and (lean := _leanest(probe, card, tp)) in ("heavy", "nofit", "slow"):
            # its leanest rung, its fastest and smallest, does not meet: it matters only if nothing does
            skipped.append(_Skip(i, o, probe, None, False, 0.0, tp, lean))
        else:
            c = evaluate(o, model, targets, econ, quants, power_model, apis, probe=probe)
            done.append((i, c))
            if card is not None and c.decode_tokens_per_s is not None:
                card.holders.append((tp, c))
        if card is not None:
            card.learn(tp, o.count, probe)

    for i, o in enumerate(options):
        visit(i, o, _Probe(o, model, targets, quants, weights_of), defer=prune)
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
    late = [s for s in skipped if s.option.spec.id in cards and s.tp in cards[s.option.spec.id].varies]
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


def _leanest(probe: _Probe, card: _Card | None, tp: int) -> str:
    """The status of the option's leanest rung: from a smaller count of the card when one held it, else estimated."""
    q, kv = probe.ladder[-1], probe.kv_ladder[-1]
    return card.status(tp, probe, q, kv)[0] if card is not None else probe.rung(q, kv).status


def _tensor_parallel(model: Model, targets: Targets, quants: QuantTable):
    """machine -> the tensor-parallel degree the engine deploys the model with there (it depends on the GPUs, not on
    the weight or cache types)."""
    eng = engines.get(targets.engine)
    settings = EngineSettings(name=targets.engine, parallel=targets.concurrency)
    ladder = weight_ladder(model, targets)
    kv = KVChoice(eng.kv_ladder[0], eng.kv_ladder[0])
    job = eng.prepare(model.profile, ladder[0], kv, settings, quants, model.weights)
    context = engine_context(targets.context, settings)
    return lambda machine: eng.deployment(job, machine, context).tp


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
    """Hide options that are costlier and worse on every target than another of the same kind (buy / rent)."""
    return [a for a in cands if not any(b is not a and b.option.kind == a.option.kind and dominates(b, a)
                                        for b in cands)]


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
