"""`advisor breakeven`: a model on a machine, its speed and power, priced against APIs. Pure given its inputs.

Money is in the user's currency: API and catalog prices are USD, multiplied by `fx` (units of the currency per
USD); the kWh price and a given hardware price are taken as already in that currency.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.core.cost import Comparison, LocalRun, Usage, compare, kwh_per_million_tokens
from advisor.core.hardware import Machine
from advisor.core.memory import Estimate
from advisor.core.power import Power
from advisor.sources.prices import ApiPrice
from advisor.core.speed import Speed


@dataclass(frozen=True)
class HardwarePrice:
    amount: float | None  # in the user's currency; None when unknown
    basis: str  # how it was found, said in the output


@dataclass(frozen=True)
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
            "hardware_price": self.hardware.amount,
            "hardware_price_basis": self.hardware.basis,
            "years": self.usage.years,
            "hardware_per_month": self.usage.hardware_per_month,
            "local_running_per_month": (self.usage.tokens_per_month / 1e6 * self.local.marginal_per_1m(
                self.usage.input_share) + self.local.fixed_per_month()),
            "apis": [{**c.as_dict(), "tier": a.tier, "price_date": a.date, "price_source": a.source,
                      "deprecated_since": a.deprecation_date or None, "provider": a.provider} for a, c in self.apis],
            "notes": list(self.notes),
        }


def default_hardware_price(machine: Machine, fx: float, catalog) -> HardwarePrice:
    """The catalog launch price of the machine's accelerators (GPUs only: not the rest of the PC)."""
    by_id = {s.id: s for s in catalog}
    total, parts = 0.0, {}
    for d in machine.gpus:
        spec = by_id.get(d.catalog_id or "")
        if spec is None or spec.launch_price_usd is None:
            return HardwarePrice(None, f"no catalog price for {d.name}: give --hardware-price")
        total += spec.launch_price_usd
        parts[spec.name] = (parts.get(spec.name, (0, spec.launch_price_usd))[0] + 1, spec.launch_price_usd)
    if not machine.gpus:
        return HardwarePrice(None, "CPU-only machine: give --hardware-price")
    what = " + ".join(f"{n}x {name} at ${usd:,.0f}" for name, (n, usd) in parts.items())
    kind = "base system price" if machine.is_apple else "launch price, GPU only"
    return HardwarePrice(total * fx, f"catalog {kind}: {what}")


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
    rows = []
    for a in apis:
        out = a.output_usd_per_1m * fx if a.output_usd_per_1m is not None else None
        rows.append((a, compare(local, usage, a.name, a.input_usd_per_1m * fx, out)))
    busy = local.busy_hours(usage.tokens_per_day, usage.input_share)
    if busy > 24:
        notes.append(f"{usage.tokens_per_day:,.0f} tokens/day needs {busy:.0f} h of generation a day on this machine: "
                     f"more than one machine (or --concurrency)")
    return Breakeven(machine, est, speed, power, local, usage, currency, fx, hardware, tuple(rows), tuple(notes))


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
