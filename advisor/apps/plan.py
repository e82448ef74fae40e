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
from dataclasses import dataclass, replace

from advisor.sources.catalog import HardwareSpec
from advisor.core.deployment import Deployment
from advisor.core.cost import DAYS_PER_MONTH, MONTHS_PER_YEAR, TOKENS_PER_UNIT, LocalRun, Usage, busy_hours, compare
from advisor.errors import UsageError
from advisor.detect.simulated import simulated_machine
from advisor.core.hardware import Machine
from advisor import engines
from advisor.apps.estimate import engine_context, estimate, fits_on_gpus, per_sequence_context, weights_bytes
from advisor.core.memory import EngineSettings, Estimate, KVChoice
from advisor.core.power import PowerModel, system_power
from advisor.sources.prices import ApiPrice, Rental
from advisor.core.formats import QuantTable
from advisor.core.model import ModelProfile
from advisor.core.speed import estimate_speed
from advisor.core.units import GIB
from advisor.core.tensors import WeightsLayout

# The precision ladders, best first, are each engine's (engine.weight_ladder / kv_ladder in advisor/engines): weight
# precision is given up before cache precision (a q8_0 cache is close to lossless, a lower weight type is not).
SORTS = ("tco", "price", "speed", "context", "watts")
# Speeds closer than this are a tie when one option hides another: the decode model's median error is 4.3%
# (README, measured against throughput.csv), so a smaller difference says nothing.
SPEED_TIE_FRACTION = 0.05
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

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


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
        """The option, with the engine's parallelism when it is not plain (vLLM on 3 GPUs: "... PP3")."""
        d = self.deployment
        return f"{self.option.label} {d.label}" if d is not None and d.pp > 1 else self.option.label

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
                if spec.price_memory_gib == size:
                    price, basis = spec.launch_price_usd * fx, f"launch price of the {size:g} GB configuration"
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


def evaluate(option: Option, model: Model, targets: Targets, econ: Economics, quants: QuantTable,
             power_model: PowerModel, apis: list[ApiPrice]) -> Candidate:
    engine = EngineSettings(name=targets.engine, parallel=targets.concurrency)
    context = engine_context(targets.context, engine)  # every one of `concurrency` sequences holds the target
    machine = option.machine
    ladder = (model.file_quant,) if model.weights is not None else engines.get(targets.engine).weight_ladder
    kv_ladder = engines.get(targets.engine).kv_ladder
    wanted = "cpu" if not machine.gpus else "gpu"
    budget = option.memory_bytes
    rejected: list[str] = []
    fastest: tuple[Estimate, object] | None = None  # holds the context, too slow
    smallest: tuple[str, str] | None = None  # the leanest combination whose weights fit: for "how close"

    def run(q, kv, ctx, solve=False):
        return estimate(model.profile, q, KVChoice(kv, kv), engine, ctx, machine, quants, weights=model.weights,
                        solve_max_context=solve)

    def most(est: Estimate) -> int | None:
        """Max context per sequence: the estimator's on-GPU solve, or a search in RAM for a CPU-only box."""
        if wanted == "gpu":
            total = run(est.quant, est.kv_type, context, solve=True).max_context
        else:
            fits = lambda ctx: run(est.quant, est.kv_type, ctx).placement == "cpu"  # noqa: E731
            start = context if est.placement == "cpu" else 0
            total = _largest_fitting(fits, start, max(context, est.model_max_context))
        return None if not total else per_sequence_context(total, engine)

    for q in ladder:
        w = model.weights.total_bytes if model.weights is not None else weights_bytes(model.profile, q, quants)
        if w > budget:
            rejected.append(f"{q} weights {w / GIB:.1f} GiB > {budget / GIB:.1f} GiB")
            continue
        smallest = (q, kv_ladder[-1])
        for kv in kv_ladder:
            if wanted == "gpu" and not fits_on_gpus(model.profile, q, KVChoice(kv, kv), engine, context, machine,
                                                    quants, model.weights):
                continue
            est = run(q, kv, context)
            if est.placement != wanted:
                continue
            speed = estimate_speed(est, machine, targets.concurrency)
            decode = speed.decode_tokens_per_s
            if decode is None:
                rejected.append(f"{q}: decode speed unknown")
                break
            if decode / targets.concurrency >= targets.min_tokens_per_s:
                why = ("the highest precision that holds the context and reaches the speed"
                       + (f"; one step up, {rejected[-1]}" if rejected else ""))
                return _priced(option, True, why, est, most(est), speed, econ, power_model, apis)
            rejected.append(f"{q} + {kv} KV decodes {decode / targets.concurrency:.1f} tok/s")
            if fastest is None or decode > fastest[1].decode_tokens_per_s:
                fastest = (est, speed)
        else:
            if not any(r.startswith(q) for r in rejected):
                rejected.append(f"{q} does not hold {targets.context:,} tokens")
    if fastest is not None:
        est, speed = fastest
        why = f"too slow (needs {targets.min_tokens_per_s:g} tok/s)"
        return _priced(option, False, why, est, most(est), speed, econ, power_model, apis)
    if smallest is None:
        return Candidate(option, False, f"even the smallest weights do not fit ({rejected[-1]})" if rejected
                         else "no memory")
    q, kv = smallest
    est = run(q, kv, context)
    reach = most(est)
    why = (f"holds at most {reach:,} tokens at {q} + {kv} KV" if reach else f"{q} + {kv} KV does not fit")
    if wanted == "gpu" and est.placement == "gpu+cpu":
        why += " on the GPU (the rest would spill to RAM)"
    return Candidate(option, False, why, q, kv, est.placement, False, reach, weights_bytes=est.weights_bytes,
                     kv_bytes=est.kv_bytes, deployment=est.deployment)


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

    def meeting(self) -> list[Candidate]:
        return [c for c in self.candidates if c.meets_targets and within_budget(c, self.targets.budget)]


def search(options: list[Option], model: Model, targets: Targets, econ: Economics, quants: QuantTable,
           power_model: PowerModel, apis: list[ApiPrice], notes: list[str] = ()) -> Plan:
    if targets.context < 1 or targets.concurrency < 1 or targets.max_gpus < 1:
        raise UsageError("context, concurrency and max GPUs must be at least 1")
    if targets.min_tokens_per_s < 0:
        raise UsageError("the speed target must not be negative")
    notes = list(notes)
    limit = model.profile.max_context
    if targets.context > limit:
        notes.append(f"{model.profile.id} is trained for {limit:,} tokens; planned at {targets.context:,} as asked "
                     f"(quality beyond the trained length is not assured: a long-context release is the safer pick)")
        model = replace(model, profile=replace(model.profile, max_context=targets.context))
    cands = tuple(evaluate(o, model, targets, econ, quants, power_model, apis) for o in options)
    return Plan(targets, econ, cands, tuple(notes))


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
