"""Defaults a person sets once: `config.toml` in the platformdirs config dir, then ADVISOR_* variables, then options.

The file holds plain keys; each feeds the option of the same name on every command that has it:

    kwh_price = 0.30      # breakeven, plan
    region = "DE"         # instead of kwh_price
    currency = "EUR"
    fx = 0.92             # units of currency per USD
    headroom = 1.5        # GiB kept free per GPU: check, fit

click applies the precedence: an option on the command line beats its ADVISOR_* variable, which beats this file,
which beats the built-in default.
"""

from __future__ import annotations

import os
from pathlib import Path

from advisor.errors import ProfileError

CONFIG_FILE_NAME = "config.toml"
CONFIG_ENV = "ADVISOR_CONFIG"  # another config file instead of the one in the config dir (tests, several setups)
# key -> (accepted Python types, what it means)
KEYS = {
    "kwh_price": ((int, float), "electricity price per kWh, in currency"),
    "region": ((str,), "electricity price preset (advisor prices --electricity)"),
    "currency": ((str,), "3-letter currency code of money fields"),
    "fx": ((int, float), "units of currency per USD"),
    "headroom": ((int, float), "GiB kept free on each GPU"),
}


def env_name(key: str) -> str:
    return "ADVISOR_" + key.upper()


def config_path() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    from platformdirs import user_config_dir

    return Path(user_config_dir("advisor")) / CONFIG_FILE_NAME


def load_config(path: Path | None = None) -> dict:
    """The validated key -> value mapping; {} when the file does not exist."""
    path = path or config_path()
    if not path.is_file():
        if os.environ.get(CONFIG_ENV):
            raise ProfileError(f"{path}: no such config file ({CONFIG_ENV})")
        return {}
    from advisor.sources.profiles import parse_toml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read ({exc})") from None
    raw = parse_toml(text, str(path))
    values = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise ProfileError(f"{path}: unknown key '{key}'; known keys: {', '.join(KEYS)}")
        types, what = KEYS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ProfileError(f"{path}: '{key}' must be a {'number' if float in types else 'string'} ({what}), "
                               f"got {value!r}")
        if float in types and value < 0:
            raise ProfileError(f"{path}: '{key}' must not be negative, got {value!r}")
        values[key] = value
    return values


def default_map(commands: dict, values: dict) -> dict:
    """click's default_map: for each command, the config values of the options it has."""
    out = {}
    for name, command in commands.items():
        params = {p.name for p in command.params}
        chosen = {k: v for k, v in values.items() if k in params}
        if chosen:
            out[name] = chosen
    return out
