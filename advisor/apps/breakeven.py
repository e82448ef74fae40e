"""`advisor breakeven`: a model on a machine, its speed and power, priced against APIs. Pure given its inputs.

Money is in the user's currency: API and catalog prices are USD, multiplied by `fx` (units of the currency per
USD); the kWh price and a given hardware price are taken as already in that currency.
"""

from __future__ import annotations

from dataclasses import replace

from advisor.core.cost import Comparison, LocalRun, Usage, compare, kwh_per_million_tokens
from advisor.core.units import GIB

HOURS_PER_DAY = 24
from advisor.core.hardware import Machine
from advisor.core.memory import Estimate
from advisor.core.power import Power
from advisor.core.record import record
from advisor.core.speed import Speed
from advisor.sources.prices import ApiPrice


@record
class HardwarePrice:
    amount: float | None  # in the user's currency; None when unknown
    basis: str  # how it was found, said in the output


@record
class Breakeven:
    machine: Machine
    estimate: Estimate
    speed: Speed
    power: Power
    local: LocalRun
    usage: Usage
    currency: str
    fx: float
    hardware: HardwarePrice
    apis: tuple[tuple[ApiPrice, Comparison], ...]
    notes: tuple[str, ...]
    capacity_tokens_per_day: float | None = None  # what 24 h of generating delivers at this concurrency and mix
    delivered: Usage | None = None  # the volume priced: the asked one, or the capacity when that is less

    @property
    def over_capacity(self) -> bool:
        return self.delivered is not None and self.delivered.tokens_per_day < self.usage.tokens_per_day

    @property
    def priced(self) -> Usage:
        return self.delivered if self.delivered is not None else self.usage

    def as_dict(self) -> dict:
        est = self.estimate
        return {
            "machine": self.machine.as_dict(),
            "model": est.model,
            "quant": est.quant,
            "kv_type": est.kv_type,
            "context": est.context,
            "placement": est.placement,
            "kv_bytes": est.kv_bytes,
            "concurrency": self.speed.concurrency,
            "currency": self.currency,
            "fx": self.fx,
            "kwh_price": self.local.kwh_price,
            "watts_decode": self.local.watts_decode,
            "watts_prefill": self.local.watts_prefill,
            "watts_idle": self.local.watts_idle,
            "watts_source": self.power.source,
            "watts_decode_range": list(self.power.decode_range) if self.power.decode_range else None,
            "always_on": self.local.always_on,
            "decode_tokens_per_s": self.local.decode_tokens_per_s,
            "prefill_tokens_per_s": self.local.prefill_tokens_per_s,
            "decode_tokens_per_s_range": list(self.speed.decode_range) if self.speed.decode_range else None,
            "kwh_per_1m_output": kwh_per_million_tokens(self.local.watts_decode, self.local.decode_tokens_per_s),
            "kwh_per_1m_input": kwh_per_million_tokens(self.local.watts_prefill, self.local.prefill_tokens_per_s),
            "local_cost_per_1m_input": self.local.cost_per_1m_input,
            "local_cost_per_1m_output": self.local.cost_per_1m_output,
            "local_cost_per_1m_blended": self.local.blended_per_1m(self.usage.input_share),
            "tokens_per_day": self.usage.tokens_per_day,
            "tokens_per_month": self.usage.tokens_per_month,
            "input_share": self.usage.input_share,
            "busy_hours_per_day": self.local.busy_hours(self.usage.tokens_per_day, self.usage.input_share),
            "capacity_tokens_per_day": self.capacity_tokens_per_day,
            "delivered_tokens_per_day": self.priced.tokens_per_day,
            "delivered_tokens_per_month": self.priced.tokens_per_month,
            "over_capacity": self.over_capacity,
            "hardware_price": self.hardware.amount,
            "hardware_price_basis": self.hardware.basis,
            "years": self.usage.years,
            "hardware_per_month": self.usage.hardware_per_month,
            "local_running_per_month": (self.priced.tokens_per_month / 1e6 * self.local.marginal_per_1m(
                self.usage.input_share) + self.local.fixed_per_month()),
            "apis": [{**c.as_dict(), "tier": a.tier, "price_date": a.date, "price_source": a.source,
                      "deprecated_since": a.deprecation_date or None, "provider": a.provider} for a, c in self.apis],
            "notes": list(self.notes),
        }


def default_hardware_price(machine: Machine, fx: float, catalog) -> HardwarePrice:
    """The catalog launch price of the machine's accelerators (GPUs only: not the rest of the PC). A unified-memory
    system (a Mac, Strix Halo, DGX Spark) is priced by its memory configuration: the catalog's price only when it is
    for this memory size, else unknown (never another configuration's price)."""
    by_id = {s.id: s for s in catalog}
    total, parts = 0.0, {}
    if not machine.gpus:
        return HardwarePrice(None, "CPU-only machine: give --hardware-price")
    for d in machine.gpus:
        spec = by_id.get(d.catalog_id or "")
        if spec is None or spec.launch_price_usd is None:
            return HardwarePrice(None, f"no catalog price for {d.name}: give --hardware-price")
        if machine.is_apple:
            size = round(machine.ram_total_bytes / GIB) if machine.ram_total_bytes else None
            usd = spec.price_for_memory(size)
            if usd is None:
                sized = f"the {size:g} GB configuration" if size else "this memory configuration (RAM unknown)"
                priced = f" (it has one for {spec.price_memory_gib:g} GB)" if spec.price_memory_gib else ""
                return HardwarePrice(None, f"no catalog price for {spec.name} in {sized}{priced}: "
                                           "give --hardware-price")
            return HardwarePrice(usd * fx, f"catalog launch price of the {size:g} GB {spec.name}")
        total += spec.launch_price_usd
        parts[spec.name] = (parts.get(spec.name, (0, spec.launch_price_usd))[0] + 1, spec.launch_price_usd)
    what = " + ".join(f"{n}x {name} at ${usd:,.0f}" for name, (n, usd) in parts.items())
    return HardwarePrice(total * fx, f"catalog launch price, GPU only: {what}")


def capacity_tokens_per_day(local: LocalRun, input_share: float) -> float:
    """Tokens (input + output, in this mix) that 24 hours of generating deliver: the speeds are for all the
    sequences decoded together, so this is at the run's concurrency."""
    return HOURS_PER_DAY / local.busy_hours(1.0, input_share)  # hours grow with the tokens, in proportion


def breakeven(est: Estimate, speed: Speed, power: Power, machine: Machine, apis: list[ApiPrice], usage: Usage,
              kwh_price: float, currency: str, fx: float, hardware: HardwarePrice, always_on: bool,
              notes: list[str] = ()) -> Breakeven:
    notes = list(notes) + list(speed.notes) + list(power.notes)
    prefill = speed.prefill_tokens_per_s
    prefill_watts = power.prefill_watts
    if prefill is None:
        # input tokens can never cost more energy than decoding them one by one
        prefill, prefill_watts = speed.decode_tokens_per_s, power.decode_watts
        notes.append("prefill speed unknown: input tokens priced at the decode energy per token (an upper bound)")
    idle = power.idle_watts if power.idle_watts is not None else 0.0
    local = LocalRun(kwh_price=kwh_price, watts_decode=power.decode_watts, watts_prefill=prefill_watts,
                     watts_idle=idle, decode_tokens_per_s=speed.decode_tokens_per_s, prefill_tokens_per_s=prefill,
                     always_on=always_on)
    capacity = capacity_tokens_per_day(local, usage.input_share)
    delivered = usage
    busy = local.busy_hours(usage.tokens_per_day, usage.input_share)
    if usage.tokens_per_day > capacity:
        delivered = replace(usage, tokens_per_day=capacity)
        seqs = f"{speed.concurrency} sequences at once" if speed.concurrency > 1 else "one sequence at a time"
        notes.append(f"{usage.tokens_per_day:,.0f} tokens/day needs {busy:,.0f} h of generating a day on this machine "
                     f"({seqs}); a day has 24: it delivers at most {capacity:,.0f} tokens/day, and the costs, savings "
                     f"and payback are for those (the rest needs more machines, --concurrency, or the API)")
    rows = []
    for a in apis:
        out = a.output_usd_per_1m * fx if a.output_usd_per_1m is not None else None
        c = compare(local, delivered, a.name, a.input_usd_per_1m * fx, out)
        if delivered is not usage and c.api_per_month is not None and c.hardware_per_month is not None:
            c = replace(c, verdict=f"at the {capacity:,.0f} tokens/day it can deliver, {c.verdict}")
        rows.append((a, c))
    return Breakeven(machine, est, speed, power, local, usage, currency, fx, hardware, tuple(rows), tuple(notes),
                     capacity, delivered)


# The seed post's pairing: Llama-3-70B (between GPT-3.5 and GPT-4) where it fits, else Llama-3-8B (GPT-3.5 class).
DEFAULT_MODELS = ("llama-3-70b", "llama-3-8b")


def default_model(fits_on_gpu, fits_anywhere) -> tuple[str, str]:
    """(model id, why) for the first of DEFAULT_MODELS that fits on the GPU, else the first that fits at all.

    fits_on_gpu / fits_anywhere: callables model id -> bool (the caller runs the memory model)."""
    for test, where in ((fits_on_gpu, "fully on the GPU"), (fits_anywhere, "in this machine's memory")):
        for m in DEFAULT_MODELS:
            if test(m):
                return m, f"the largest of {', '.join(DEFAULT_MODELS)} that fits {where}; choose with --model"
    return DEFAULT_MODELS[-1], "nothing else fits; choose with --model"
