"""Cost and break-even: exact energy arithmetic, the invariants a user relies on, and the CLI contract."""

import json
import math

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.cli import main
from advisor.core.cost import HOURS_PER_MONTH, LocalRun, Usage, compare, kwh_per_million_tokens


def run(*args):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- exact arithmetic

def test_kwh_per_million_tokens_is_watts_over_tokens_per_s_over_3_6():
    # 1 kW for 10^6 s (1 token/s) is 277.8 h -> 277.78 kWh
    assert kwh_per_million_tokens(1000, 1) == pytest.approx(1000 / 3.6, rel=1e-15)
    assert kwh_per_million_tokens(300, 100) == pytest.approx(300 / 100 / 3.6, rel=1e-15)


def test_breakeven_with_watts_is_exact_from_the_json_fields():
    r = run("breakeven", "--watts", "350", "--kwh-price", "0.30", "--gpu", "RTX 4090", "--ram", "64",
            "--model", "llama-3-8b", "--api", "gpt-4o", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["watts_decode"] == 350 and d["watts_source"] == "--watts"
    expected = 350 / d["decode_tokens_per_s"] / 3.6 * 0.30
    assert d["local_cost_per_1m_output"] == pytest.approx(expected, rel=1e-12)
    assert d["local_cost_per_1m_input"] == pytest.approx(350 / d["prefill_tokens_per_s"] / 3.6 * 0.30, rel=1e-12)


def test_json_contract_fields():
    r = run("breakeven", "--kwh-price", "0.17", "--gpu", "RTX 4090", "--model", "llama-3-70b", "--ram", "128",
            "--tokens-per-day", "2000000", "--input-share", "0.75", "--hardware-price", "1800", "--years", "3",
            "--api", "gpt-4o", "--api", "deepseek-chat", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in ("machine", "model", "quant", "currency", "kwh_price", "watts_decode", "decode_tokens_per_s",
                "prefill_tokens_per_s", "local_cost_per_1m_input", "local_cost_per_1m_output", "apis"):
        assert key in d, key
    assert d["model"] == "llama-3-70b" and d["currency"] == "USD" and d["kwh_price"] == 0.17
    assert d["hardware_price"] == 1800 and d["hardware_price_basis"] == "--hardware-price"
    assert [a["name"] for a in d["apis"]] == ["gpt-4o", "deepseek-chat"]
    for a in d["apis"]:
        for key in ("name", "cost_per_1m_input", "cost_per_1m_output", "breakeven_tokens_per_month",
                    "payback_months", "monthly_savings"):
            assert key in a
    gpt4o = d["apis"][0]
    assert (gpt4o["cost_per_1m_input"], gpt4o["cost_per_1m_output"]) == (2.5, 10)
    # 70B Q4_K_M is 40 GiB: on one 4090 it spills to RAM and decodes at a few tokens/s
    assert d["placement"] == "gpu+cpu" and d["decode_tokens_per_s"] < 10


def test_payback_is_null_when_it_never_pays_off():
    # Llama-3-8B on a 4090 against an API that charges less than the electricity
    r = run("breakeven", "--kwh-price", "0.30", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api",
            "deepinfra/llama-3.1-8b", "--json")
    d = json.loads(r.output)
    api = d["apis"][0]
    assert d["local_cost_per_1m_output"] > api["cost_per_1m_output"]
    assert api["payback_months"] is None and api["breakeven_tokens_per_month"] is None
    assert "electricity alone" in api["verdict"]


def test_currency_scales_every_money_field_but_not_the_kwh_price():
    base = ["breakeven", "--kwh-price", "0.4883", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o",
            "--json"]
    usd = json.loads(run(*base).output)
    cny = json.loads(run(*base, "--currency", "CNY", "--fx", "7.0").output)
    assert cny["currency"] == "CNY" and cny["kwh_price"] == 0.4883
    # the same kWh number in a different currency: local cost per token is the same number
    assert cny["local_cost_per_1m_output"] == pytest.approx(usd["local_cost_per_1m_output"])
    assert cny["apis"][0]["cost_per_1m_output"] == pytest.approx(7.0 * 10)
    assert cny["hardware_price"] == pytest.approx(7.0 * 1599)  # the catalog's launch price, converted


def test_default_hardware_price_is_the_catalog_price_and_says_so():
    d = json.loads(run("breakeven", "--kwh-price", "0.3", "--gpu", "2x RTX 3090", "--json").output)
    assert d["hardware_price"] == 2 * 1499
    assert "catalog" in d["hardware_price_basis"] and "2x GeForce RTX 3090" in d["hardware_price_basis"]


def test_default_model_pairing_prefers_70b_where_it_fits_on_the_gpu():
    two = json.loads(run("breakeven", "--kwh-price", "0.3", "--gpu", "2x RTX 3090", "--json").output)
    one = json.loads(run("breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--json").output)
    assert two["model"] == "llama-3-70b" and two["placement"] == "gpu"
    assert one["model"] == "llama-3-8b" and one["placement"] == "gpu"
    assert {a["tier"] for a in one["apis"]} == {"gpt-3.5"}  # compared within the model's tier by default
    assert {a["tier"] for a in two["apis"]} == {"llama-3-70b"}


def test_region_preset_and_conversion():
    de = json.loads(run("breakeven", "--region", "DE", "--currency", "EUR", "--fx", "0.92", "--gpu", "RTX 4090",
                        "--json").output)
    assert de["kwh_price"] == 0.3835  # Eurostat 2025-H1, in EUR as published
    usd = json.loads(run("breakeven", "--region", "DE", "--gpu", "RTX 4090", "--json").output)
    assert usd["kwh_price"] == 0.4218  # the file's USD figure (EURUSD 1.10, said in a note)
    assert any("USD/kWh" in n for n in usd["notes"])


def test_always_on_adds_idle_energy():
    base = ["breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o",
            "--json"]
    off = json.loads(run(*base).output)
    on = json.loads(run(*base, "--always-on").output)
    extra = on["local_running_per_month"] - off["local_running_per_month"]
    # idle all month, minus the idle share already inside the busy hours
    busy_h = off["busy_hours_per_day"] * HOURS_PER_MONTH / 24
    assert extra == pytest.approx(on["watts_idle"] * (HOURS_PER_MONTH - busy_h) / 1000 * 0.3, rel=1e-9)
    assert on["apis"][0]["payback_months"] > off["apis"][0]["payback_months"]


def test_concurrency_raises_throughput_and_lowers_cost_per_token():
    base = ["breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o",
            "--json"]
    one = json.loads(run(*base).output)
    eight = json.loads(run(*base, "--concurrency", "8").output)
    assert eight["decode_tokens_per_s"] > 4 * one["decode_tokens_per_s"]
    assert eight["local_cost_per_1m_output"] < one["local_cost_per_1m_output"]
    assert eight["watts_decode"] >= one["watts_decode"]


@pytest.mark.parametrize("engine", ["llama.cpp", "ollama", "vllm"])
def test_concurrency_gives_each_sequence_the_context_once(engine):
    """--concurrency 8 --context 4096 holds 8 x 4096 tokens of cache on every engine (llama.cpp's -c is shared by
    its slots, Ollama's num_ctx and vLLM's max_model_len are per sequence): not 8 x 8 x 4096."""
    base = ["breakeven", "--kwh-price", "0.3", "--gpu", "H100 SXM", "--model", "llama-3-8b", "--engine", engine,
            "--context", "4096", "--api", "gpt-4o", "--json"]
    one = json.loads(run(*base).output)
    eight = json.loads(run(*base, "--concurrency", "8").output)
    assert eight["kv_bytes"] == pytest.approx(8 * one["kv_bytes"], rel=0.01)


@pytest.mark.parametrize("args, message", [
    ((), "--kwh-price"),
    (("--kwh-price", "0.3", "--region", "DE"), "not both"),
    (("--kwh-price", "0.3", "--currency", "CNY"), "--fx"),
    (("--kwh-price", "0.3", "--currency", "dollars"), "3-letter"),
    (("--kwh-price", "0.3", "--api", "gpt-9000"), "unknown API"),
    (("--region", "Atlantis"), "unknown region"),
    (("--kwh-price", "0.3", "--model", "llama-2-7b"), "--api"),
    (("--kwh-price", "0.3", "--model", "llama-3.1-405b", "--ram", "64"), "does not fit"),
    (("--kwh-price", "-1"), "--kwh-price"),
    (("--kwh-price", "0.3", "--input-share", "1.5"), "--input-share"),
    (("--kwh-price", "0.3", "--tokens-per-day", "0"), "--tokens-per-day"),
])
def test_bad_input_is_one_line_and_nonzero(args, message):
    r = run("breakeven", "--gpu", "RTX 4090", *args)
    assert r.exit_code != 0
    assert message in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception
    assert r.stdout == ""  # the error goes to stderr


def test_custom_card_without_power_figure_asks_for_watts():
    args = ("breakeven", "--kwh-price", "0.3", "--vram", "24", "--bandwidth", "900", "--model", "llama-3-8b")
    r = run(*args)
    assert r.exit_code == 1 and "--watts" in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception
    assert run(*args, "--watts", "350", "--api", "gpt-4o").exit_code == 0


def test_table_and_plot_are_readable():
    r = run("breakeven", "--kwh-price", "0.3", "--gpu", "2x RTX 3090", "--api", "gpt-4o", "--api", "deepseek-chat",
            "--plot")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "this machine (electricity)" in out and "gpt-4o" in out and "payback" in out
    assert "tokens per month" in out and "L = this machine" in out and "| = your volume" in out
    assert "pays off in" in out or "never pays off" in out


def test_explain_shows_the_formula_with_numbers():
    r = run("breakeven", "--kwh-price", "0.3", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--watts", "300",
            "--explain")
    assert r.exit_code == 0, r.output
    assert "watts / decode tok/s / 3.6 = 300.0 /" in r.output


# ---------------------------------------------------------------- invariants

def _payback(c):
    return math.inf if c.payback_months is None else c.payback_months


def _local(kwh, always_on, watts=300.0, idle=50.0, dec=50.0, pre=1000.0):
    return LocalRun(kwh_price=kwh, watts_decode=watts, watts_prefill=watts * 1.5, watts_idle=idle,
                    decode_tokens_per_s=dec, prefill_tokens_per_s=pre, always_on=always_on)


money = st.floats(min_value=0.0, max_value=100.0, allow_nan=False, allow_subnormal=False)
positive = st.floats(min_value=0.01, max_value=1e3, allow_nan=False)
scenario = st.fixed_dictionaries({
    "kwh": money, "always_on": st.booleans(), "watts": st.floats(min_value=5, max_value=3000),
    "idle": st.floats(min_value=0, max_value=5), "dec": positive, "pre": positive,
    "tokens": st.floats(min_value=1, max_value=1e9), "share": st.floats(min_value=0, max_value=1),
    "price": st.floats(min_value=0, max_value=1e5), "years": st.floats(min_value=0.5, max_value=10),
    "api_in": money, "api_out": money,
})


def _compare(s, **change):
    s = {**s, **change}
    local = _local(s["kwh"], s["always_on"], s["watts"], s["idle"], s["dec"], s["pre"])
    usage = Usage(s["tokens"], s["share"], s["price"], s["years"])
    return local, compare(local, usage, "api", s["api_in"], s["api_out"])


@settings(max_examples=300, deadline=None)
@given(scenario, st.floats(min_value=0, max_value=10))
def test_higher_kwh_price_never_lowers_local_cost_nor_shortens_payback(s, more):
    local_a, a = _compare(s)
    local_b, b = _compare(s, kwh=s["kwh"] + more)
    assert local_b.cost_per_1m_output >= local_a.cost_per_1m_output
    assert local_b.cost_per_1m_input >= local_a.cost_per_1m_input
    assert b.local_running_per_month >= a.local_running_per_month - 1e-9
    assert _payback(b) >= _payback(a) * (1 - 1e-9)


@settings(max_examples=300, deadline=None)
@given(scenario, st.floats(min_value=0, max_value=10), st.floats(min_value=0, max_value=10))
def test_higher_api_price_never_lengthens_payback(s, more_in, more_out):
    _, a = _compare(s)
    _, b = _compare(s, api_in=s["api_in"] + more_in, api_out=s["api_out"] + more_out)
    assert _payback(b) <= _payback(a) * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(scenario, st.floats(min_value=1, max_value=100))
def test_more_tokens_per_day_never_lengthen_payback(s, factor):
    _, a = _compare(s)
    _, b = _compare(s, tokens=s["tokens"] * factor)
    assert _payback(b) <= _payback(a) * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(scenario)
def test_at_the_breakeven_volume_owning_and_renting_cost_the_same(s):
    _, c = _compare(s)
    if c.breakeven_tokens_per_month is None:
        return
    per_day = c.breakeven_tokens_per_month / (HOURS_PER_MONTH / 24)
    _, at = _compare(s, tokens=per_day)
    assert at.api_per_month == pytest.approx(at.local_running_per_month + at.hardware_per_month, rel=1e-6, abs=1e-9)
    if c.payback_months is not None:
        assert c.payback_months * (c.api_per_month - c.local_running_per_month) == pytest.approx(s["price"], rel=1e-9)
