"""The user's data and cache folders for advisor.

On Linux and other XDG systems these are $XDG_DATA_HOME/advisor (~/.local/share/advisor), $XDG_CACHE_HOME/advisor
(~/.cache/advisor) and $XDG_CONFIG_HOME/advisor (~/.config/advisor), exactly what platformdirs answers there; computed here because
importing platformdirs costs ~7 ms of every start-up (it pulls in tempfile and shutil). macOS and Windows ask
platformdirs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "advisor"
_XDG = {"data": ("XDG_DATA_HOME", (".local", "share")), "cache": ("XDG_CACHE_HOME", (".cache",)),
        "config": ("XDG_CONFIG_HOME", (".config",))}


def user_dir(kind: str) -> Path:
    """kind: "data", "cache" or "config"."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        var, default = _XDG[kind]
        base = os.environ.get(var, "").strip()
        return Path(base if base else Path.home().joinpath(*default)) / APP
    import platformdirs

    if kind == "data":
        return Path(platformdirs.user_data_dir(APP))
    if kind == "config":
        return Path(platformdirs.user_config_dir(APP))
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))
