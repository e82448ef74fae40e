"""Rendering for `advisor plan` and `advisor gpus`: what to buy, in a table a person can choose from."""

from __future__ import annotations

from advisor.sources.catalog import HardwareSpec
from advisor.present.output import Document, Table, scalars
from advisor.apps.plan import CLOSEST_SHOWN, Candidate, Plan, below_default, closest, ranked
from advisor.present.cost import count, money
from advisor.core.units import fmt_tokens

UNKNOWN_PRICE_LISTED = 6  # "also meets, price unknown": name this many, then count the rest
SHOWN_ROWS = 15  # rows of the default table; --all lists everything
PROGRESS_AFTER_S = 0.5  # a search slower than this shows a spinner on stderr (on a terminal only)


def _speed(c: Candidate) -> str:
    return "—" if c.decode_tokens_per_s is None else f"{c.decode_tokens_per_s:,.1f}"


def _running(c: Candidate, cur: str) -> str:
    if c.option.kind == "rent":
        return money(c.monthly_rent, cur) if c.monthly_rent is not None else "—"
    return money(c.monthly_energy_cost, cur)


def _price(c: Candidate, cur: str) -> str:
    if c.option.kind == "rent":
        return f"{money(c.option.rent_per_hour, cur)}/h"
    return money(c.option.price, cur) if c.option.price is not None else "unknown"


def _payback(c: Candidate) -> str:
    if c.option.kind == "rent" or c.api is None or c.option.price is None:
        return "—"
    return "never" if c.payback_months is None else f"{c.payback_months:,.0f} mo"


def _weights(c: Candidate) -> str:
    return f"{c.quant}/{c.kv_type}" if c.quant else "—"


def _row(c: Candidate, cur: str, payback: bool) -> tuple:
    watts = "—" if c.watts is None or c.option.kind == "rent" else f"{c.watts:,.0f}"
    row = (c.label, _weights(c), fmt_tokens(c.max_context), _speed(c), _price(c, cur), watts,
           _running(c, cur), money(c.tco, cur))
    return row + ((_payback(c),) if payback else ())


HEADERS = ("hardware", "weights/KV", "ctx", "tok/s", "price", "W", "run/mo", "TCO")


def plan_document(plan: Plan, sort: str, show_all: bool, seconds: float, plot: bool = False) -> Document:
    t, e = plan.targets, plan.economics
    cur = e.currency
    seq = f"{t.concurrency} sequences at once" if t.concurrency > 1 else "1 sequence"
    floor = f", weights {t.min_quant} or better" if t.min_quant else ""
    head = [f"Target   {t.model}, {fmt_tokens(t.context)} context, >= {t.min_tokens_per_s:g} tok/s per sequence"
            f"{floor} ({t.engine}, {seq})"
            + (f", price <= {money(t.budget, cur)}" if t.budget is not None else "")]
    head.append(f"Usage    {count(e.tokens_per_day)} tokens/day ({e.input_share:.0%} input), electricity "
                f"{e.kwh_price:g} {cur}/kWh, costs over {e.years:g} years")
    meeting = plan.meeting()
    shown = ranked(plan, sort, show_all)
    buy = [c for c in meeting if c.option.kind == "buy"]
    rent = [c for c in meeting if c.option.kind == "rent"]
    n_buy, n_rent = plan.options_searched()
    head.append(f"Searched {n_buy + n_rent} options ({n_buy} to buy, {n_rent} to rent) "
                f"in {seconds:.2f} s: {len(buy) + plan.skipped_meeting()} to buy and {len(rent)} to rent meet the "
                "targets")
    tail: list[str] = []
    data = {"targets": t.as_dict(), "economics": e.as_dict(), "sort": sort,
            "candidates": [c.as_dict() for c in shown], "notes": list(plan.notes)}
    if not meeting:
        near = closest(plan, CLOSEST_SHOWN, t.budget)
        if near or t.budget is None:
            head.append(f"Nothing in the catalog meets these targets{_budget_words(plan)}. Closest:")
        else:
            near = closest(plan, CLOSEST_SHOWN)
            head.append(f"Nothing in the catalog meets these targets{_budget_words(plan)}, and nothing priced "
                        f"within it comes close. Closest at any price:")
        rows = tuple((c.label, _weights(c), fmt_tokens(c.max_context), _speed(c), _price(c, cur),
                      _why_not(c, cur)) for c in near)
        table = Table(("hardware", "weights/KV", "ctx", "tok/s", "price", "why not"), rows, wrap=(0, 5))
        data["closest"] = [c.as_dict() for c in near]
        if not show_all:
            data["candidates"] = []
        tail.append("Try a shorter --context, a lower --min-tokens-per-s, more --max-gpus"
                    + (", a lower --min-quant" if t.min_quant else "")
                    + (" or a larger --budget" if t.budget is not None else "") + ".")
        tail += [f"note: {n}" for n in plan.notes]
        records = tuple(scalars(c.as_dict()) for c in near)
        return Document(data=data, records=records, head=tuple(head), table=table, tail=tuple(tail))
    pick = next((c for c in shown if c.meets_targets and c.option.kind == "buy" and c.tco is not None), None)
    if pick is not None:
        head.append(_pick_line(pick, cur, e.years))
    listed = shown if show_all else _readable(shown)
    # the payback column only when something pays back: a column of "never" says less than one line
    payback = any(c.payback_months is not None for c in listed)
    table = Table(HEADERS + (("payback",) if payback else ()), tuple(_row(c, cur, payback) for c in listed),
                  wrap=(0, 1))
    hidden = len(meeting) + plan.skipped_meeting() - len(shown)
    if not show_all:
        unknown = [c for c in shown if c.option.kind == "buy" and c.option.price is None and c not in listed]
        if unknown:
            names = ", ".join(c.option.label for c in unknown[:UNKNOWN_PRICE_LISTED])
            more = len(unknown) - UNKNOWN_PRICE_LISTED
            tail.append(f"Also meet, price unknown (no launch price in the catalog): {names}"
                        + (f" and {more} more" if more > 0 else "") + ".")
        cut = len(shown) - len(listed) - len(unknown)
        if hidden > 0 or cut > 0:
            tail.append(f"{hidden + cut} more meet the targets but cost more for no more speed, context or precision "
                        f"(or fell past the first {SHOWN_ROWS}): --all lists every option.")
    api = next((c.api for c in listed if c.api), None)
    rungs = "the highest precision that meets the targets" + (f", none below {t.min_quant}" if t.min_quant else "")
    tail.append(f"weights/KV: the weight type and KV cache type each row runs ({rungs}); "
                f"ctx: most context per sequence on this hardware; tok/s: decode with a full {fmt_tokens(t.context)} "
                "cache" + (", all sequences together" if t.concurrency > 1 else "") + "; W: at the wall while "
                "decoding; run/mo: electricity at your volume (bought) or rent for the hours spent generating (rented, "
                f"power included); TCO: price + run/mo x {e.months:g} months.")
    if api and payback:
        tail.append(f"payback: months until owning beats {api}, the cheapest API of {t.model}'s tier.")
    elif api:
        tail.append(f"Against {api}, the cheapest API of {t.model}'s tier, none of these pays back at "
                    f"{count(e.tokens_per_day)} tokens/day (`advisor breakeven` shows the volume where one would).")
    tail.append("Prices: catalog launch prices of the GPUs only (not the rest of the PC) or of the whole "
                "unified-memory system; `advisor gpus` lists them with sources.")
    kits = {c.option.ram_kit.id: c.option.ram_kit for c in listed if c.option.ram_kit is not None}
    if kits:
        dates = sorted({k.as_of for k in kits.values()})
        tail.append("GPU+RAM (experts): the routed experts in system RAM (llama.cpp --fit), read at channels x MT/s x "
                    f"8 bytes; the RAM kit's retail price ({', '.join(dates)}) is in the price and the TCO "
                    "(profiles/prices/ram.toml; --json: ram_kit).")
    if pick is not None:
        tail.append(f"Why {pick.quant} + {pick.kv_type} KV on {pick.label}: {pick.why}.")
    low = sorted({c.quant for c in listed if below_default(c.quant, t.engine)}, key=str)
    if low and not t.min_quant:
        tail.append(f"Rows with {'/'.join(low)} weights give up quality for memory: --min-quant "
                    f"{_default_quant(t.engine)} rules them out.")
    if any(c.option.spec.vendor == "AMD" for c in listed):
        tail.append("AMD rows: decode speed from the fit to CUDA measurements; no ROCm or Vulkan measurements here "
                    "to check it against.")
    tail += [f"note: {n}" for n in plan.notes]
    records = tuple(scalars(_record(c)) for c in (shown if show_all else listed))
    extra = ("\n".join(plot_lines(listed, cur)),) if plot else ()
    return Document(data=data, records=records, head=tuple(head), table=table, tail=tuple(tail), extra=extra)


def _default_quant(engine: str) -> str:
    from advisor import engines

    return engines.get(engine).default_quant


def _record(c: Candidate) -> dict:
    d = c.as_dict()
    d.pop("api_comparisons")
    d.pop("notes")
    return d


def _readable(shown: list[Candidate]) -> list[Candidate]:
    """The default table: options with a known cost first (bought and rented), then, only when there are none,
    the unpriced ones; at most SHOWN_ROWS."""
    priced = [c for c in shown if c.tco is not None]
    return (priced or shown)[:SHOWN_ROWS]


def _why_not(c: Candidate, cur: str) -> str:
    if not c.meets_targets:
        return c.why
    if c.option.kind == "rent":
        return f"meets the targets; over the budget: {money(c.tco, cur)} of rent over the years"
    if c.option.price is None:
        return "meets the targets; price unknown, so not within the budget"
    return f"meets the targets; over the budget at {money(c.option.price, cur)}"


def _budget_words(plan: Plan) -> str:
    b = plan.targets.budget
    return "" if b is None else f" within {money(b, plan.economics.currency)}"


def _pick_line(c: Candidate, cur: str, years: float) -> str:
    return (f"Pick     {c.label}: {money(c.option.price, cur)} + {money(c.monthly_energy_cost, cur)}/month "
            f"electricity = {money(c.tco, cur)} over {years:g} years; {c.quant} weights, {c.kv_type} KV, "
            f"{c.decode_tokens_per_s:,.1f} tok/s, holds {fmt_tokens(c.max_context)}")


def plot_lines(cands: list[Candidate], cur: str) -> list[str]:
    from advisor.present.plot import Point, scatter_plot

    points = [Point(c.option.label, c.option.price, c.decode_tokens_per_s) for c in cands
              if c.option.kind == "buy" and c.option.price is not None and c.decode_tokens_per_s is not None]
    return scatter_plot(points, x_label=f"price ({cur})", y_label="decode tokens/s")


# ---------------------------------------------------------------- advisor gpus

KIND_ORDER = {"gpu": 0, "apple": 1, "unified": 2, "cpu": 3}
KIND_WORDS = {"gpu": "GPUs", "apple": "Apple chips", "unified": "other unified-memory systems",
              "cpu": "CPU-only memory configurations"}
SEGMENT_ORDER = {"consumer": 0, "workstation": 1, "datacenter": 2}


def gpus_document(specs: tuple[HardwareSpec, ...]) -> Document:
    ordered = sorted(specs, key=lambda s: (KIND_ORDER.get(s.kind, 9), SEGMENT_ORDER.get(s.segment, 9), s.vendor,
                                           s.memory_gib or 0, s.bandwidth_gb_s or 0))
    sources: dict[str, int] = {}
    rows = []
    for s in ordered:
        ref = sources.setdefault(s.spec_source, len(sources) + 1)
        memory = "/".join(f"{m:g}" for m in s.memory_options_gib) if s.memory_options_gib else \
            (f"{s.memory_gib:g}" if s.memory_gib else "—")
        rows.append((s.id, memory, _num(s.bandwidth_gb_s), _num(s.fp16_tflops), _num(s.tdp_watts),
                     f"${s.launch_price_usd:,.0f}" if s.launch_price_usd is not None else "—", s.status, ref))
    table = Table(("id", "GB", "GB/s", "FP16 TF", "TDP W", "price", "status", "src"), tuple(rows), wrap=(1,))
    tail = ["GB: memory (several: the configurations sold); FP16 TF: dense tensor FP16 TFLOPS; price: launch "
            "price in USD (Apple and unified systems: the configuration in `advisor gpus --json`).",
            "status: copied = every number from the source; derived = some computed (see notes in --json); mixed = "
            "copied plus recalled; recalled = vendor figures from memory that no source here backs.",
            "Sources:"]
    tail += [f"[{i}] {text}" for text, i in sources.items()]
    data = {"devices": [s.as_dict() for s in ordered]}
    return Document(data=data, records=tuple(scalars(s.as_dict()) for s in ordered),
                    head=(f"{len(ordered)} entries in the hardware catalog (profiles/hardware/): "
                          + ", ".join(f"{n} {KIND_WORDS[k]}" for k in KIND_ORDER
                                      if (n := sum(1 for s in ordered if s.kind == k))) + ".",),
                    table=table, tail=tuple(tail))


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:,.4g}"

