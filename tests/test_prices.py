"""Price data: the shipped tables, the seed post's table, user overrides, validation, `advisor prices`."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from advisor.cli import main
from advisor.errors import ProfileError
from advisor.sources.prices import TIERS, load_prices, parse_prices

TODAY = dt.date(2026, 11, 25)


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def tables():
    return load_prices()


def test_every_entry_has_a_date_and_a_source(tables):
    assert len(tables.apis) >= 90 and len(tables.regions) >= 25 and len(tables.rentals) >= 40
    for a in tables.apis:
        assert a.date and a.source and a.input_usd_per_1m >= 0, a.name
    for r in tables.regions:
        assert r.period and r.source and r.price_per_kwh > 0, r.code
    for r in tables.rentals:
        assert r.source, r


def test_the_seed_posts_2024_05_17_table_is_there_verbatim(tables):
    # the blog post's table (USD at its ~7 CNY/USD conversion); Doubao Pro's output price was not published
    seed = {
        "gpt-4o@2024-05-17": (5, 15), "gpt-4-turbo@2024-05-17": (10, 30), "gpt-4@2024-05-17": (30, 60),
        "gpt-3.5-turbo@2024-05-17": (0.5, 1.5), "gpt-3.5-turbo-instruct@2024-05-17": (1.5, 2),
        "moonshot-v1-8k@2024-05-17": (1.71, 1.71), "deepseek-v2@2024-05-17": (0.14, 0.28),
        "doubao-pro-32k@2024-05-17": (0.11, None),
    }
    for name, (inp, out) in seed.items():
        a = tables.api(name)
        assert (a.input_usd_per_1m, a.output_usd_per_1m, a.date) == (inp, out, "2024-05-17"), name


def test_each_tier_has_live_default_apis(tables):
    for tier in TIERS:
        defaults = tables.tier_defaults(tier, TODAY)
        assert len(defaults) >= 3, tier
        assert all(not a.deprecated(TODAY) for a in defaults)


def test_name_lookup_exact_prefix_and_ambiguity(tables):
    assert tables.api("GPT-4o").name == "gpt-4o"
    assert tables.api("deepseek-chat").date == "2026-11-24"  # the newest, not the 2025-09 snapshot
    with pytest.raises(Exception, match="ambiguous"):
        tables.api("groq/llama")
    with pytest.raises(Exception, match="did you mean"):
        tables.api("gpt4o")


def test_user_file_overrides_and_adds(tmp_path):
    user = tmp_path / "prices.toml"
    user.write_text('[[api]]\nname = "gpt-4o"\ninput_usd_per_1m = 1.0\noutput_usd_per_1m = 4.0\n'
                    'date = "2026-12-01"\nsource = "my invoice"\n\n'
                    '[[api]]\nname = "my-endpoint"\ninput_usd_per_1m = 0.2\noutput_usd_per_1m = 0.6\n'
                    'tier = "llama-3-70b"\n\n'
                    '[[region]]\ncode = "HOME"\nname = "my tariff"\nprice_per_kwh = 0.21\ncurrency = "USD"\n'
                    'usd_per_kwh = 0.21\nperiod = "2026"\nsource = "my bill"\n', encoding="utf-8")
    t = load_prices(user)
    gpt4o = t.api("gpt-4o")
    assert (gpt4o.input_usd_per_1m, gpt4o.output_usd_per_1m, gpt4o.source) == (1.0, 4.0, "my invoice")
    assert gpt4o.provider == "openai" and gpt4o.tier == "gpt-4"  # fields not given are kept
    mine = t.api("my-endpoint")
    assert mine.origin == str(user) and mine.date == "user"
    assert t.region("home").price_per_kwh == 0.21
    # and through the CLI, both as --prices and from the config dir
    r = run("breakeven", "--prices", str(user), "--region", "HOME", "--gpu", "RTX 4090", "--model", "llama-3-8b",
            "--api", "my-endpoint", "--api", "gpt-4o", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kwh_price"] == 0.21 and d["apis"][1]["cost_per_1m_output"] == 4.0


def test_user_file_in_the_config_dir_is_picked_up(tmp_path, monkeypatch):
    from advisor.sources.prices import default_user_file

    path = default_user_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[[api]]\nname = "gpt-4o"\ninput_usd_per_1m = 0.5\n', encoding="utf-8")
    r = run("prices", "--json")
    d = json.loads(r.output)
    assert d["user_file"] == str(path)
    assert next(a for a in d["api"] if a["name"] == "gpt-4o")["input_usd_per_1m"] == 0.5


@pytest.mark.parametrize("text, fragment", [
    ('[[api]]\nname = "x"\ninput_usd_per_1m = "cheap"\n', "input_usd_per_1m"),
    ('[[api]]\nname = "x"\ninput_usd_per_1m = -1\n', "input_usd_per_1m"),
    ('[[api]]\nname = "x"\n', "input_usd_per_1m"),
    ('[[api]]\nname = "x"\ninput_usd_per_1m = 1\ntier = "gpt-5"\n', "tier"),
    ('[[api]]\nname = "x"\ninput_usd_per_1m = 1\nprise = 3\n', "prise"),
    ('[[apis]]\nname = "x"\n', "apis"),
    ('[[api]\nname = "x"\n', "not valid TOML"),
])
def test_bad_user_file_names_file_and_field(tmp_path, text, fragment):
    user = tmp_path / "mine.toml"
    user.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_prices(user)
    assert str(user) in str(err.value) and fragment in str(err.value)
    r = run("prices", "--prices", str(user))
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_missing_user_file_is_a_clear_error(tmp_path):
    r = run("prices", "--prices", str(tmp_path / "nope.toml"))
    assert r.exit_code != 0 and "nope.toml" in r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_shipped_duplicates_are_rejected():
    text = '[[api]]\nname = "a"\ninput_usd_per_1m = 1\ndate = "x"\nsource = "y"\n'
    with pytest.raises(ProfileError, match="duplicate"):
        parse_prices([("f.toml", text + text)])


def test_prices_command_shows_dates_sources_and_the_oldest():
    r = run("prices")
    assert r.exit_code == 0
    assert "oldest price dated 2024-05-17" in r.output
    assert "litellm" in r.output and "gpt-4o@2024-05-17" in r.output and "(deprecated)" in r.output
    e = run("prices", "--electricity")
    assert "CN-BJ" in e.output and "0.4883 CNY" in e.output and "Eurostat" in e.output
    g = run("prices", "--rental")
    assert "RunPod" in g.output and "skypilot" in g.output
    t = json.loads(run("prices", "--tier", "gpt-3.5", "--json").output)
    assert t["api"] and {a["tier"] for a in t["api"]} == {"gpt-3.5"}
