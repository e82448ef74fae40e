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
    from advisor.sources.dirs import user_dir

    return user_dir("config") / CONFIG_FILE_NAME


def load_config(path: Path | None = None) -> dict:
    """The validated key -> value mapping; {} when the file does not exist. Only a regular file of at most
    TOML_LIMIT bytes is read; each number is finite and not negative (the range of the option it feeds is checked
    by the CLI, which also names this file and key)."""
    from advisor.sources.files import TOML_LIMIT, read_text
    from advisor.sources.profiles import parse_toml

    path = path or config_path()
    try:
        text = read_text(path, TOML_LIMIT)
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV):
            raise ProfileError(f"{path}: no such config file ({CONFIG_ENV})") from None
        return {}
    raw = parse_toml(text, str(path))
    values = {}
    for key, value in raw.items():
        if key not in KEYS:
            raise ProfileError(f"{path}: unknown key '{key}'; known keys: {', '.join(KEYS)}")
        types, what = KEYS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ProfileError(f"{path}: '{key}' must be a {'number' if float in types else 'string'} ({what}), "
                               f"got {value!r}")
        if float in types:
            check_number(f"{path}: '{key}'", value)
            if value < 0:
                raise ProfileError(f"{path}: '{key}' must not be negative, got {value!r}")
        if key == "currency" and not is_currency_code(value):
            raise ProfileError(f"{path}: 'currency' must be a 3-letter code such as USD, EUR, CNY; got {value!r}")
        values[key] = value
    return values


def is_currency_code(text: str) -> bool:
    """Three letters (USD, EUR, CNY), as --currency, ADVISOR_CURRENCY and the config file's key take it."""
    code = text.strip()
    return len(code) == 3 and code.isalpha()


def check_number(where: str, value) -> float:
    """`value` (an int or float from a file) as a finite float, or a ProfileError naming `where` (file and key)."""
    import math

    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        raise ProfileError(f"{where} must be a finite number, got an integer of {value.bit_length()} bits") from None
    if not math.isfinite(number):
        raise ProfileError(f"{where} must be a finite number, got {value!r}")
    return number


def default_map(commands: dict, values: dict) -> dict:
    """click's default_map: for each command, the config values of the options it has."""
    out = {}
    for name, command in commands.items():
        params = {p.name for p in command.params}
        chosen = {k: v for k, v in values.items() if k in params}
        if chosen:
            out[name] = chosen
    return out
