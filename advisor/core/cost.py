"""Local cost per token, and when owning the hardware beats paying an API. Pure functions; money in one currency.

    kWh per 1M tokens   = watts / (tokens/s) x 10^6 s / 3.6 x 10^6 J per kWh = watts / (tokens/s) / 3.6
    local cost per 1M   = kWh per 1M x price per kWh          (input at prefill speed and power, output at decode)
    blended per 1M      = input share x input price + (1 - input share) x output price       (local and API alike)

Per month, at T tokens:

    API                 = T / 10^6 x API blended
    local, running      = T / 10^6 x local marginal + fixed idle     (idle only with --always-on)
    hardware            = hardware price / (12 x years)
    monthly savings     = API - local running - hardware
    break-even T        = (hardware + fixed idle) / (API blended - local marginal) x 10^6
    payback months      = hardware price / (API - local running)

With --always-on the machine idles when it is not generating: the idle watts run all month (fixed) and a token
costs only its power above idle (marginal). Without it, the machine is counted only while it generates.
"""

from __future__ import annotations

import math
from advisor.core.record import record

SECONDS_PER_HOUR = 3600
JOULES_PER_KWH = 3.6e6
TOKENS_PER_UNIT = 1_000_000  # prices are per 1M tokens
DAYS_PER_YEAR = 365.25
MONTHS_PER_YEAR = 12
DAYS_PER_MONTH = DAYS_PER_YEAR / MONTHS_PER_YEAR  # 30.44
HOURS_PER_MONTH = DAYS_PER_MONTH * 24  # 730.5


def kwh_per_million_tokens(watts: float, tokens_per_s: float) -> float:
    """Energy for 1M tokens at `watts` and `tokens_per_s`: W / (tok/s) x 10^6 / 3.6x10^6 = W / (tok/s) / 3.6."""
    if tokens_per_s <= 0:
        raise ValueError("tokens_per_s must be positive")
    return watts / tokens_per_s * TOKENS_PER_UNIT / JOULES_PER_KWH


@record
class LocalRun:
    """What generating costs on this machine, in the user's currency."""

    kwh_price: float
    watts_decode: float
    watts_prefill: float
    watts_idle: float
    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    always_on: bool = False

    @property
    def cost_per_1m_output(self) -> float:
        return kwh_per_million_tokens(self.watts_decode, self.decode_tokens_per_s) * self.kwh_price

    @property
    def cost_per_1m_input(self) -> float:
        return kwh_per_million_tokens(self.watts_prefill, self.prefill_tokens_per_s) * self.kwh_price

    def blended_per_1m(self, input_share: float) -> float:
        return input_share * self.cost_per_1m_input + (1 - input_share) * self.cost_per_1m_output

    def marginal_per_1m(self, input_share: float) -> float:
        """A token's cost above what the machine would draw anyway (idle, when it is always on)."""
        if not self.always_on:
            return self.blended_per_1m(input_share)
        idle_in = kwh_per_million_tokens(self.watts_idle, self.prefill_tokens_per_s) * self.kwh_price
        idle_out = kwh_per_million_tokens(self.watts_idle, self.decode_tokens_per_s) * self.kwh_price
        return self.blended_per_1m(input_share) - input_share * idle_in - (1 - input_share) * idle_out

    def fixed_per_month(self) -> float:
        """Idle energy for a whole month when the machine stays on, else 0."""
        if not self.always_on:
            return 0.0
        return self.watts_idle * HOURS_PER_MONTH / 1000 * self.kwh_price

    def busy_hours(self, tokens_per_month: float, input_share: float) -> float:
        return busy_hours(tokens_per_month, input_share, self.prefill_tokens_per_s, self.decode_tokens_per_s)


def busy_hours(tokens: float, input_share: float, prefill_tokens_per_s: float, decode_tokens_per_s: float) -> float:
    """Hours of generating for `tokens`: input at prefill speed, output at decode speed."""
    seconds = tokens * input_share / prefill_tokens_per_s + tokens * (1 - input_share) / decode_tokens_per_s
    return seconds / SECONDS_PER_HOUR


@record
class Usage:
    tokens_per_day: float
    input_share: float
    hardware_price: float | None  # None: unknown
    years: float

    @property
    def tokens_per_month(self) -> float:
        return self.tokens_per_day * DAYS_PER_MONTH

    @property
    def hardware_per_month(self) -> float | None:
        if self.hardware_price is None:
            return None
        return self.hardware_price / (self.years * MONTHS_PER_YEAR)


@record
class Comparison:
    name: str
    cost_per_1m_input: float
    cost_per_1m_output: float | None
    api_per_month: float | None
    local_running_per_month: float
    hardware_per_month: float | None
    monthly_savings: float | None
    breakeven_tokens_per_month: float | None
    payback_months: float | None
    verdict: str  # one line a person can act on

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def compare(local: LocalRun, usage: Usage, name: str, api_input_per_1m: float,
            api_output_per_1m: float | None) -> Comparison:
    """Owning this machine against paying `name` at these prices (already in the user's currency)."""
    share = usage.input_share
    running = usage.tokens_per_month / TOKENS_PER_UNIT * local.marginal_per_1m(share) + local.fixed_per_month()
    hardware = usage.hardware_per_month
    if api_output_per_1m is None and share < 1:
        return Comparison(name, api_input_per_1m, None, None, running, hardware, None, None, None,
                          "output price not published: cannot compare")
    api_blended = share * api_input_per_1m + (1 - share) * (api_output_per_1m or 0.0)
    api_month = usage.tokens_per_month / TOKENS_PER_UNIT * api_blended
    margin = api_blended - local.marginal_per_1m(share)
    savings = api_month - running - hardware if hardware is not None else None
    # a vanishing margin means a break-even volume no one reaches (and one a float cannot hold)
    if margin <= 0 or not math.isfinite((hardware or 0.0) / margin * TOKENS_PER_UNIT):
        verdict = "never pays off: electricity alone costs more per token than the API"
        return Comparison(name, api_input_per_1m, api_output_per_1m, api_month, running, hardware, savings, None, None,
                          verdict)
    if hardware is None:
        return Comparison(name, api_input_per_1m, api_output_per_1m, api_month, running, None, None, None, None,
                          "hardware price unknown: give --hardware-price")
    breakeven = (hardware + local.fixed_per_month()) / margin * TOKENS_PER_UNIT
    if not math.isfinite(breakeven):
        breakeven = None
    gain = api_month - running
    if gain <= 0:
        verdict = "never pays off at this volume: idle power costs more than the API would"
        return Comparison(name, api_input_per_1m, api_output_per_1m, api_month, running, hardware, savings,
                          breakeven, None, verdict)
    payback = usage.hardware_price / gain
    life = usage.years * MONTHS_PER_YEAR
    if payback <= life:
        verdict = f"pays off in {payback:.1f} months"
    else:
        verdict = f"pays off only after {payback:.0f} months, beyond the {usage.years:g}-year life"
    return Comparison(name, api_input_per_1m, api_output_per_1m, api_month, running, hardware, savings, breakeven,
                      payback, verdict)
