import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).parent / "data"


@pytest.fixture
def registry():
    from advisor.sources.profiles import load_registry

    return load_registry()


@pytest.fixture
def no_gpu_machine(monkeypatch):
    """Detection on a machine without NVIDIA driver: the real failure NVML gives there."""
    import pynvml

    from fake_nvml import FakeNVML

    fake = FakeNVML(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setattr("advisor.detect.nvml._load_nvml", lambda: fake)
    return fake


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """No test reads the developer's own config dir (a prices.toml there would change results)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # user profiles (advisor import)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the parsed-data cache
    for name in list(os.environ):
        if name.startswith("ADVISOR_") or name == "NO_COLOR":
            monkeypatch.delenv(name)


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """An empty user-profile folder, with the registry reloaded before and after the test."""
    from advisor.sources.profiles import load_registry

    folder = tmp_path / "user-models"
    monkeypatch.setenv("ADVISOR_USER_MODELS", str(folder))
    load_registry.cache_clear()
    yield folder
    load_registry.cache_clear()
