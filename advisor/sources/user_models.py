"""Where the user's own profiles live (advisor import writes them; the registry reads them). A leaf module."""

from __future__ import annotations

import os
from pathlib import Path

USER_MODELS_ENV = "ADVISOR_USER_MODELS"  # another user-profile folder (tests, a shared team folder)


def user_models_dir() -> Path:
    if os.environ.get(USER_MODELS_ENV):
        return Path(os.environ[USER_MODELS_ENV])
    from advisor.sources.dirs import user_dir

    return user_dir("data") / "models"


def user_profile_files() -> list[Path]:
    folder = user_models_dir()
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".toml") and p.is_file())
