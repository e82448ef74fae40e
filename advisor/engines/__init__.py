"""The engines, one module each, behind one protocol (engines/base.py) and this registry.

A module here that defines `ENGINE` (an `Engine` instance) is an engine: the registry finds it by listing the
package, so adding an engine is adding its module (plus its data and tests). Engine names are compared only inside
this package; everyone else asks the registry.
"""

from __future__ import annotations

import importlib
import os
from functools import lru_cache

from advisor.errors import UsageError

# the order engines are listed in (--engine choices, error messages); any other module found comes after these
PREFERRED_ORDER = ("llama.cpp", "ollama", "vllm")
NOT_ENGINES = ("base",)


@lru_cache(maxsize=1)
def _registry() -> dict:
    found = {}
    # the package's own modules, listed from its folder (pkgutil would cost more to import than the listing)
    names = sorted({f[:-3] for folder in __path__ for f in os.listdir(folder)
                    if f.endswith(".py") and not f.startswith("_")})
    for name in names:
        if name in NOT_ENGINES:
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        engine = getattr(module, "ENGINE", None)
        if engine is not None:
            found[engine.name] = engine
    order = {name: i for i, name in enumerate(PREFERRED_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def names() -> tuple[str, ...]:
    return tuple(_registry())


def all_engines() -> tuple:
    return tuple(_registry().values())


def get(name: str):
    """The engine called `name`; a UsageError naming the choices otherwise."""
    try:
        return _registry()[name]
    except KeyError:
        raise UsageError(f"unknown engine '{name}'; choose from {', '.join(names())}") from None
