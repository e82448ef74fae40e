"""Fuzzing every command's numeric options, config.toml and a prices file (issue 17): whatever the values, the
program answers or refuses in one line. No traceback, exit codes 0/1/2 only, and no NaN or Infinity in any JSON
it prints. The numeric options are found on the commands themselves, so an option added later is fuzzed too.

Bounded example counts keep this to a few seconds in CI; `--hypothesis-seed` reproduces a failure."""

import json
import math

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli import main

# A command line that is valid on its own for each command, on a simulated machine (no NVML, no probe).
BASE = {
    "check": ["check", "--gpu", "RTX 4090", "--ram", "64", "--model", "qwen3-30b-a3b", "--json"],
    "fit": ["fit", "gpt-oss-20b", "--gpu", "RTX 4090", "--ram", "64", "--json"],
    "breakeven": ["breakeven", "--gpu", "RTX 4090", "--ram", "64", "--model", "qwen3-8b", "--kwh-price", "0.3",
                  "--json"],
    "plan": ["plan", "--model", "qwen3-8b", "--json"],
}

NUMERIC = (click.types.IntParamType, click.types.FloatParamType, click.types.IntRange, click.types.FloatRange)


def numeric_options(command: str) -> list[str]:
    cmd = main.commands[command]
    out = []
    for p in cmd.params:
        if isinstance(p, click.Option) and not p.is_flag and isinstance(p.type, NUMERIC):
            out.append(max(p.opts, key=len))
    return sorted(out)


def test_every_command_has_numeric_options_to_fuzz():
    """The fuzzing below is only worth something if it finds the options (a rename would silently empty it)."""
    for command in BASE:
        assert numeric_options(command), command
    assert "--context" in numeric_options("fit") and "--kwh-price" in numeric_options("breakeven")


# What people (and scripts) type for a number: ordinary, edge, absurd and not-a-number.
VALUES = st.one_of(
    st.sampled_from(["0", "-0", "1", "-1", "0.5", "nan", "NaN", "inf", "-inf", "1e309", "1e-320", "", " ", "abc",
                     "0x10", "1_000", "9" * 400, "-" + "9" * 40, "1e18", "3.4e38", "2147483648", "4294967297"]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def _no_nan(text: str) -> None:
    def refuse(constant):
        raise AssertionError(f"JSON holds {constant}")

    json.loads(text, parse_constant=refuse)


def _check_outcome(result, args) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: traceback {type(result.exception).__name__}: {result.exception}")
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    stderr = result.stderr
    assert "Traceback" not in stderr and "Traceback" not in result.stdout, (args, stderr)
    if result.exit_code:
        lines = [line for line in stderr.splitlines() if line.startswith("advisor: error:")]
        assert len(lines) == 1, (args, stderr)
    elif result.stdout.strip():
        _no_nan(result.stdout)


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@pytest.mark.parametrize("command", sorted(BASE))
@FUZZ
@given(data=st.data())
def test_numeric_options_answer_or_refuse_in_one_line(command, data):
    options = numeric_options(command)
    chosen = data.draw(st.lists(st.sampled_from(options), min_size=1, max_size=3, unique=True), label="options")
    args = list(BASE[command])
    for option in chosen:
        args += [option, data.draw(VALUES, label=option)]  # last: click takes the last of a repeated option
    _check_outcome(CliRunner().invoke(main, args), args)


TOML_VALUES = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "9" * 30, '"DE"', '"XX"', '"EUR"', '"EURO"', '""',
                     "true", "[1, 2]", "{a = 1}", '"0.3"', "0.3", "2026-12-01"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
CONFIG_KEYS = ("kwh_price", "region", "currency", "fx", "headroom", "not_a_key")


@FUZZ
@given(entries=st.dictionaries(st.sampled_from(CONFIG_KEYS), TOML_VALUES, max_size=4), junk=st.sampled_from(
    ["", "\n[table]\nx = 1", "\nkwh_price = 0.2", "\n= broken", "\x00"]))
def test_config_toml_contents_answer_or_refuse_in_one_line(tmp_path_factory, monkeypatch, entries, junk):
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in entries.items()) + junk)
    monkeypatch.setenv("ADVISOR_CONFIG", str(path))
    for command in ("breakeven", "fit", "config"):
        args = ["config", "--json"] if command == "config" else [a for a in BASE[command] if a != "0.3"]
        if command == "breakeven":
            args.remove("--kwh-price")  # the price may come from the file
        _check_outcome(CliRunner().invoke(main, args), (args, path.read_text()))


PRICE_FIELDS = ("input_usd_per_1m", "output_usd_per_1m", "max_input_tokens")


@FUZZ
@given(field=st.sampled_from(PRICE_FIELDS), value=TOML_VALUES, extra=st.sampled_from(
    ["", "\n[[api]]\nname = \"x\"", "\n[[nonsense]]\na = 1", "\n[[api]]\nname = \"gpt-4o-mini\"\n"]))
def test_a_prices_file_answers_or_refuses_in_one_line(tmp_path_factory, field, value, extra):
    path = tmp_path_factory.mktemp("prices") / "prices.toml"
    entry = {"name": '"my-api"', "input_usd_per_1m": "0.5", "output_usd_per_1m": "1.5", "tier": '"gpt-4"'}
    entry[field] = value
    path.write_text("[[api]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items()) + extra)
    for args in (BASE["breakeven"] + ["--prices", str(path), "--api", "my-api"],
                 BASE["plan"] + ["--prices", str(path)]):
        _check_outcome(CliRunner().invoke(main, args), (args, path.read_text()))


def test_the_outcome_check_catches_what_it_is_for():
    """_check_outcome must fail on a traceback, a NaN in JSON and a two-line error: else the fuzzing proves nothing."""

    class R:
        def __init__(self, code, out="", err="", exc=None):
            self.exit_code, self.stdout, self.stderr, self.exception = code, out, err, exc
            self.output = out

    for bad in (R(1, exc=ZeroDivisionError("x")), R(0, out='{"a": NaN}'), R(0, out='{"a": Infinity}'),
                R(2, err="advisor: error: a\nadvisor: error: b\n"), R(3, err="advisor: error: x\n"),
                R(1, err="Traceback (most recent call last):\nadvisor: error: x\n")):
        with pytest.raises(AssertionError):
            _check_outcome(bad, "x")
    _check_outcome(R(0, out='{"a": 1.5}'), "x")
    _check_outcome(R(2, err="advisor: error: x\n", exc=SystemExit(2)), "x")
    assert math.isfinite(1.0)
