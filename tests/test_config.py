"""Defaults from the config file, overridden by ADVISOR_* variables, overridden by options (issue 8)."""

import json

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.sources.config import config_path

BREAKEVEN = ["breakeven", "--gpu", "RTX 4090", "--model", "llama-3-8b", "--api", "gpt-4o", "--json"]


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def config():
    def write(text: str):
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write


def kwh(result) -> float:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["kwh_price"]


def test_config_file_supplies_the_price(config):
    assert run(*BREAKEVEN).exit_code == 2  # no price anywhere: a usage error asking for one
    config("kwh_price = 0.25\n")
    assert kwh(run(*BREAKEVEN)) == 0.25


def test_environment_beats_file_and_option_beats_both(config):
    config("kwh_price = 0.25\n")
    assert kwh(run(*BREAKEVEN, env={"ADVISOR_KWH_PRICE": "0.31"})) == 0.31
    assert kwh(run(*BREAKEVEN, "--kwh-price", "0.4", env={"ADVISOR_KWH_PRICE": "0.31"})) == 0.4


def test_a_region_given_closer_wins_over_a_configured_price(config):
    config("kwh_price = 0.25\n")
    r = run(*BREAKEVEN, "--region", "DE")
    assert kwh(r) != 0.25 and any("DE" in n or "Germany" in n for n in json.loads(r.output)["notes"])
    config('region = "DE"\n')
    assert kwh(run(*BREAKEVEN, "--kwh-price", "0.2")) == 0.2
    both = run(*BREAKEVEN, "--kwh-price", "0.2", "--region", "DE")
    assert both.exit_code == 2 and "not both" in both.output


def test_configured_currency_and_rate(config):
    config('kwh_price = 2.0\ncurrency = "CNY"\nfx = 7.0\n')
    d = json.loads(run(*BREAKEVEN).output)
    assert d["currency"] == "CNY" and d["fx"] == 7.0
    usd = run(*BREAKEVEN, "--currency", "USD", "--kwh-price", "0.3")  # the file's fx belongs to its CNY
    assert usd.exit_code == 0, usd.output
    assert json.loads(usd.output)["currency"] == "USD"


def test_configured_headroom_reaches_check_and_fit(config):
    config("headroom = 2.5\n")
    r = run("fit", "llama-3-8b", "--gpu", "RTX 4090", "--json")
    assert json.loads(r.output)["headroom_bytes"] == int(2.5 * 2**30)
    r = run("fit", "llama-3-8b", "--gpu", "RTX 4090", "--json", env={"ADVISOR_HEADROOM": "0.5"})
    assert json.loads(r.output)["headroom_bytes"] == 2**29
    assert "2.5 GiB headroom" in run("check", "--gpu", "RTX 4090", "--model", "llama-3-8b").output


@pytest.mark.parametrize("text,words", [
    ("kwh_prize = 0.3\n", ["unknown key 'kwh_prize'"]),
    ('kwh_price = "cheap"\n', ["'kwh_price' must be a number"]),
    ("headroom = -1\n", ["'headroom' must not be negative"]),
    ("kwh_price = \n", ["not valid TOML"]),
    ("fx = true\n", ["'fx' must be a number"]),
])
def test_a_broken_config_file_is_one_line_naming_file_and_key(config, text, words):
    path = config(text)
    r = run("models")
    assert r.exit_code == 1
    assert r.output.count("\n") == 1 and str(path) in r.output and all(w in r.output for w in words)
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_advisor_config_points_at_another_file(tmp_path):
    other = tmp_path / "team.toml"
    other.write_text("kwh_price = 0.12\n")
    assert kwh(run(*BREAKEVEN, env={"ADVISOR_CONFIG": str(other)})) == 0.12
    missing = run("models", env={"ADVISOR_CONFIG": str(tmp_path / "nope.toml")})
    assert missing.exit_code == 1 and "nope.toml" in missing.output


def test_help_names_the_environment_variables():
    out = run("breakeven", "--help").output
    assert "ADVISOR_KWH_PRICE" in out and "ADVISOR_REGION" in out and "ADVISOR_CURRENCY" in out


def test_config_command_shows_file_values_and_their_source(config):
    path = config("kwh_price = 0.25\nheadroom = 2\n")
    d = json.loads(run("config", "--json", env={"ADVISOR_HEADROOM": "3"}).output)
    assert d["config_file"] == str(path) and d["exists"] is True
    by_key = {s["key"]: s for s in d["settings"]}
    assert by_key["kwh_price"]["value"] == 0.25 and by_key["kwh_price"]["source"] == "config file"
    assert by_key["headroom"]["value"] == "3" and by_key["headroom"]["source"] == "ADVISOR_HEADROOM"


@pytest.mark.parametrize("variable, value, words", [
    ("ADVISOR_KWH_PRICE", "abc", "ADVISOR_KWH_PRICE: must be between 0"),
    ("ADVISOR_KWH_PRICE", "-1", "ADVISOR_KWH_PRICE: must be between 0"),
    ("ADVISOR_HEADROOM", "nan", "ADVISOR_HEADROOM: must be a finite number"),
    ("ADVISOR_FX", "0", "ADVISOR_FX: must be a positive number"),
    ("ADVISOR_CURRENCY", "EURO", "ADVISOR_CURRENCY must be a 3-letter code"),
    ("ADVISOR_REGION", "XX", "ADVISOR_REGION: unknown region 'XX'"),
])
def test_advisor_config_refuses_a_variable_no_command_would_take(variable, value, words):
    """`advisor config` shows the defaults in force; a value every command refuses is not one: one line, exit 2."""
    import os
    import subprocess
    import sys

    env = {**os.environ, variable: value}
    p = subprocess.run([sys.executable, "-m", "advisor", "config"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and p.stderr.strip().splitlines() == [p.stderr.strip()], p.stderr
    assert p.stderr.startswith(f"advisor: error: {words}"), p.stderr


def test_advisor_config_shows_good_variables():
    import os
    import subprocess
    import sys

    env = {**os.environ, "ADVISOR_KWH_PRICE": "0.3", "ADVISOR_CURRENCY": "eur", "ADVISOR_REGION": "DE"}
    p = subprocess.run([sys.executable, "-m", "advisor", "config", "--json"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    by_key = {s["key"]: s for s in json.loads(p.stdout)["settings"]}
    assert by_key["region"]["value"] == "DE" and by_key["region"]["source"] == "ADVISOR_REGION"
