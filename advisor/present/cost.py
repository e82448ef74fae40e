"""Rendering for `advisor breakeven` and `advisor prices`: short tables a person reads in seconds."""

from __future__ import annotations

import datetime as dt

from advisor.apps.breakeven import Breakeven
from advisor.core.cost import TOKENS_PER_UNIT, kwh_per_million_tokens
from advisor.sources.prices import PriceTables
from advisor.present.report import PLACEMENT_WORDS, machine_lines
from advisor.present.output import Document, Table, scalars
from advisor.core.units import fmt_tokens

LEGEND_WIDTH = 78  # wrap plot legends to an 80-column terminal


def money(value: float | None, currency: str) -> str:
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    v = abs(value)
    text = f"{v:,.0f}" if v >= 100 else f"{v:,.2f}" if v >= 0.995 else f"{v:.3f}" if v >= 0.01 else f"{v:.2g}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def count(n: float | None) -> str:
    """1234567 -> '1.23M'."""
    if n is None:
        return "—"
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def _months(value: float | None) -> str:
    if value is None:
        return "never"
    return f"{value:.1f} mo" if value < 100 else f"{value:,.0f} mo"


def breakeven_document(b: Breakeven, today: dt.date, plot: bool = False, explain: bool = False) -> Document:
    cur, e, s, p, loc, use = b.currency, b.estimate, b.speed, b.power, b.local, b.usage
    out = machine_lines(b.machine)
    out.append(f"Model    {e.model}  {e.quant}, KV {e.kv_type}, {fmt_tokens(e.context)} context, "
               f"{PLACEMENT_WORDS[e.placement]}" + (f", {s.concurrency} sequences at once" if s.concurrency > 1 else ""))
    speed = f"Speed    decode {loc.decode_tokens_per_s:,.1f} tok/s"
    if s.decode_range:
        speed += f" (likely {s.decode_range[0]:,.0f}-{s.decode_range[1]:,.0f})"
    speed += f", prefill {loc.prefill_tokens_per_s:,.0f} tok/s" if s.prefill_tokens_per_s else ", prefill unknown"
    out.append(speed)
    watts = f"Power    {loc.watts_decode:,.0f} W decoding"
    if p.source == "model" and p.decode_range and p.decode_range[0] != p.decode_range[1]:
        watts += f" (likely {p.decode_range[0]:,.0f}-{p.decode_range[1]:,.0f})"
    watts += f", {loc.watts_prefill:,.0f} W prefill, {loc.watts_idle:,.0f} W idle, at the wall"
    watts += "  [--watts]" if p.source == "--watts" else "  [estimated; --watts to override]"
    out.append(watts)
    out.append(f"Energy   {_kwh(loc.watts_decode, loc.decode_tokens_per_s)} kWh per 1M output tokens at "
               f"{loc.kwh_price:g} {cur}/kWh: {money(loc.cost_per_1m_output, cur)} per 1M output, "
               f"{money(loc.cost_per_1m_input, cur)} per 1M input")
    on = "always on (idle power counted)" if loc.always_on else "counted only while generating"
    out.append(f"Usage    {count(use.tokens_per_day)} tokens/day = {count(use.tokens_per_month)}/month, "
               f"{use.input_share:.0%} input; machine {on}")
    if b.over_capacity:
        got = b.priced
        out.append(f"Capacity {count(got.tokens_per_day)} tokens/day = {count(got.tokens_per_month)}/month at most "
                   f"(24 h of generating{f' at concurrency {s.concurrency}' if s.concurrency > 1 else ''}): "
                   f"{count(use.tokens_per_day)}/day needs "
                   f"{loc.busy_hours(use.tokens_per_day, use.input_share):,.0f} h a day; the money below is for what "
                   "it delivers")
    hw = money(b.hardware.amount, cur) if b.hardware.amount is not None else "unknown"
    per_month = f" over {use.years:g} years = {money(use.hardware_per_month, cur)}/month" \
        if use.hardware_per_month is not None else ""
    out.append(f"Hardware {hw}{per_month} ({b.hardware.basis})")
    rows = [("this machine (electricity)", money(loc.cost_per_1m_input, cur), money(loc.cost_per_1m_output, cur),
             money(b.priced.tokens_per_month / TOKENS_PER_UNIT * loc.marginal_per_1m(use.input_share)
                   + loc.fixed_per_month(), cur), "", "", "")]
    for a, c in b.apis:
        rows.append((a.name, money(c.cost_per_1m_input, cur), money(c.cost_per_1m_output, cur),
                     money(c.api_per_month, cur), money(c.monthly_savings, cur),
                     count(c.breakeven_tokens_per_month),
                     _months(c.payback_months) if c.api_per_month is not None else "—"))
    table = Table(("", "in/1M", "out/1M", "/month", "saves/mo", "even/mo", "payback"), tuple(rows), status_column=6,
                  wrap=(0,))
    tail = [f"{a.name}" + (" (deprecated)" if a.deprecated(today) else "") + f": {c.verdict}" for a, c in b.apis]
    tail.append("")
    tail.append("/month: cost at your volume; saves/mo: API - electricity - hardware per month; even/mo: tokens per "
                "month where owning costs the same as the API; payback: months to earn the hardware back.")
    dates = sorted({a.date for a, _ in b.apis})
    if dates:
        tail.append(f"API prices dated {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "")
                    + "; `advisor prices` shows sources, --api NAME picks others.")
    tail += [f"note: {n}" for n in b.notes]
    if explain:
        tail.append("")
        tail += explain_cost_lines(b)
    data = b.as_dict()
    if explain:
        data["explain"] = explain_cost_lines(b)
    shared = {k: data[k] for k in ("model", "quant", "kv_type", "context", "concurrency", "currency", "kwh_price",
                                   "watts_decode", "decode_tokens_per_s", "local_cost_per_1m_input",
                                   "local_cost_per_1m_output", "tokens_per_month", "hardware_price", "years")}
    records = tuple({**shared, **{("api" if k == "name" else k): v for k, v in scalars(a).items()}}
                    for a in data["apis"])
    return Document(data=data, records=records, head=tuple(out), table=table, tail=tuple(tail),
                    extra=("\n".join(plot_lines(b)),) if plot else ())


def _kwh(watts: float, tokens_per_s: float) -> str:
    return f"{kwh_per_million_tokens(watts, tokens_per_s):.3g}"


def plot_lines(b: Breakeven) -> list[str]:
    from advisor.present.plot import Line, line_plot

    use, loc = b.priced, b.local
    fixed = (use.hardware_per_month or 0.0) + loc.fixed_per_month()
    lines = [Line("this machine (hardware + electricity)", fixed, loc.marginal_per_1m(use.input_share) / TOKENS_PER_UNIT)]
    for a, c in b.apis:
        if c.api_per_month is not None and use.tokens_per_month:
            lines.append(Line(a.name, 0.0, c.api_per_month / use.tokens_per_month))
    # your volume and the nearest crossing both in view
    crossings = [c.breakeven_tokens_per_month for _, c in b.apis if c.breakeven_tokens_per_month]
    x_max = 1.5 * max([use.tokens_per_month] + ([min(crossings)] if crossings else []))
    out = line_plot(lines, x_max, x_label="tokens per month", y_label=f"cost per month ({b.currency})",
                    mark_x=use.tokens_per_month)
    return _wrap_legend(out)


def _wrap_legend(lines: list[str]) -> list[str]:
    if not lines or len(lines[-1]) <= LEGEND_WIDTH:
        return lines
    parts = lines[-1].strip().split("   ")
    wrapped, current = [], " " * 11
    for part in parts:
        if len(current) + len(part) + 3 > LEGEND_WIDTH and current.strip():
            wrapped.append(current.rstrip())
            current = " " * 11
        current += part + "   "
    wrapped.append(current.rstrip())
    return lines[:-1] + wrapped


def explain_cost_lines(b: Breakeven) -> list[str]:
    loc, use, cur = b.local, b.usage, b.currency
    share = use.input_share
    lines = ["How this was computed:"]
    lines.append(f"  kWh per 1M output = watts / decode tok/s / 3.6 = {loc.watts_decode:.1f} / "
                 f"{loc.decode_tokens_per_s:.2f} / 3.6 = {_kwh(loc.watts_decode, loc.decode_tokens_per_s)}")
    lines.append(f"  cost per 1M output = kWh x price = {money(loc.cost_per_1m_output, cur)}; input likewise at "
                 f"{loc.watts_prefill:.1f} W and {loc.prefill_tokens_per_s:.1f} tok/s = {money(loc.cost_per_1m_input, cur)}")
    lines.append(f"  blended per 1M = {share:g} x input + {1 - share:g} x output = "
                 f"{money(loc.blended_per_1m(share), cur)} (APIs blended the same way)")
    if loc.always_on:
        lines.append(f"  always on: idle {loc.watts_idle:.1f} W x 730.5 h/month = {money(loc.fixed_per_month(), cur)}/month "
                     f"fixed; a token costs only its power above idle ({money(loc.marginal_per_1m(share), cur)} per 1M)")
    lines.append("  monthly savings = API per month - electricity per month - hardware price / (12 x years)")
    lines.append("  break-even tokens/month = (hardware per month + idle per month) / (API blended - local marginal)"
                 " x 10^6")
    lines.append("  payback months = hardware price / (API per month - electricity per month)")
    power_terms = ", ".join(f"{k}: {v}" for k, v in b.power.terms.items() if not isinstance(v, dict))
    if power_terms:
        lines.append(f"  power terms: {power_terms}")
    for k, v in b.power.terms.items():
        if isinstance(v, dict):
            lines.append(f"    {k}: " + ", ".join(f"{kk} {vv}" for kk, vv in v.items()))
    if b.power.source == "model" and not b.machine.is_apple:
        lines.append("  wall watts = PC idle + (sum of GPU boards at fraction x power limit - one idle board + CPU)"
                     " / PSU efficiency")
    return lines


# ------------------------------------------------------------------ advisor prices

def prices_document(tables: PriceTables, today: dt.date, show: str, tier: str | None, user_file_default: str
                    ) -> Document:
    out = []
    if show == "api":
        entries = [a for a in tables.apis if tier is None or a.tier == tier]
        rows = [(a.name + (" *" if a.default else ""), a.tier or "—", _usd(a.input_usd_per_1m),
                 _usd(a.output_usd_per_1m), _usd(a.cached_input_usd_per_1m),
                 a.date + (" (deprecated)" if a.deprecated(today) else "")) for a in entries]
        table = Table(("API", "tier", "in $/1M", "out $/1M", "cached", "price date"), tuple(rows), wrap=(5, 0))
        oldest = min((a.date for a in entries), default="")
        out.append(f"{len(entries)} APIs; oldest price dated {oldest}. * = compared by default against a model of the "
                   "same tier.")
        out.append("(deprecated) = past its deprecation date in the source: may no longer be sold at this price.")
        out += _source_lines(a.source for a in entries)
    elif show == "electricity":
        entries = tables.regions
        rows = [(r.code, r.name, r.sector, f"{r.price_per_kwh:g} {r.currency}", f"{r.usd_per_kwh:g}", r.period)
                for r in entries]
        table = Table(("--region", "where", "tariff", "per kWh", "USD/kWh", "period"), tuple(rows), wrap=(5, 1, 2))
        out.append("USD values for EUR/CNY rows use an assumed rate (EURUSD 1.10; 7.2 CNY/USD).")
        out += _source_lines(r.source for r in entries)
    else:
        entries = tables.rentals
        rows = [(r.provider, r.gpu, r.gpu_count, _usd(r.usd_per_hour), _usd(r.usd_per_gpu_hour),
                 _usd(r.spot_usd_per_gpu_hour), r.offer) for r in entries]
        table = Table(("provider", "GPU", "n", "$/hour", "$/GPU-h", "spot/GPU-h", "offer"), tuple(rows), wrap=(6, 1, 0))
        out += _source_lines(r.source for r in entries)
    if tables.user_file:
        out.append(f"User prices from {tables.user_file} override or add to the shipped ones.")
    data = {"user_file": tables.user_file, "user_file_default": user_file_default,
            show: [r.as_dict() for r in entries]}
    return Document(data=data, records=tuple(scalars(d) for d in data[show]), table=table, tail=tuple(out))


def _usd(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _source_lines(sources) -> list[str]:
    seen = []
    for s in sources:
        if s not in seen:
            seen.append(s)
    return ["Sources:"] + [f"  {s}" for s in seen]
