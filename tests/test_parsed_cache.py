"""The parsed-data cache: a changed file is read again, a broken cache is ignored, and it can be turned off."""

import os
import time

from advisor.sources import parsed_cache


def test_a_changed_file_rebuilds_and_an_unchanged_one_does_not(tmp_path):
    data = tmp_path / "data.toml"
    data.write_text("a = 1\n")
    builds = []

    def build():
        builds.append(data.read_text())
        return data.read_text()

    assert parsed_cache.cached("t", [data], build) == "a = 1\n"
    assert parsed_cache.cached("t", [data], build) == "a = 1\n"
    assert len(builds) == 1  # the second answer came from the cache
    data.write_text("a = 22\n")  # another size: another signature
    os.utime(data, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert parsed_cache.cached("t", [data], build) == "a = 22\n" and len(builds) == 2


def test_a_corrupt_cache_file_is_rebuilt_not_an_error(tmp_path):
    data = tmp_path / "d"
    data.write_text("x")
    parsed_cache.cached("u", [data], lambda: "first")
    cache = parsed_cache._cache_dir() / "u.pickle"
    assert cache.is_file()
    cache.write_bytes(b"\x80 not a pickle")
    assert parsed_cache.cached("u", [data], lambda: "again") == "again"


def test_no_cache_when_asked(tmp_path, monkeypatch):
    data = tmp_path / "d"
    data.write_text("x")
    parsed_cache.cached("v", [data], lambda: 1)
    monkeypatch.setenv("ADVISOR_NO_CACHE", "1")
    assert parsed_cache.cached("v", [data], lambda: 2) == 2


def test_the_registry_from_the_cache_is_the_registry_from_the_files(monkeypatch):
    from advisor.sources.profiles import load_registry

    load_registry.cache_clear()
    first = load_registry()  # builds and stores
    load_registry.cache_clear()
    second = load_registry()  # from the pickle
    load_registry.cache_clear()
    assert first is not second and list(first.models) == list(second.models)
    assert first.models["gpt-oss-120b"] == second.models["gpt-oss-120b"]
    assert set(first.quants.recipes) == set(second.quants.recipes)


def test_a_check_grid_served_from_cached_layouts_gives_the_same_answers(tmp_path):
    """The second `advisor check` reads the weights of its default grid from the cache; the answers are those of a
    fresh computation (ADVISOR_NO_CACHE)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    env.pop("ADVISOR_NO_CACHE", None)
    cmd = [sys.executable, "-m", "advisor", "check", "--gpu", "RTX 4090", "--ram", "64", "--kv-type", "q8_0",
           "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert list((tmp_path / "cache" / "advisor").glob("layouts-*.pickle"))
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    fresh = subprocess.run(cmd, capture_output=True, text=True, env={**env, "ADVISOR_NO_CACHE": "1"}, timeout=120)
    assert first.returncode == second.returncode == fresh.returncode == 0
    assert json.loads(second.stdout) == json.loads(fresh.stdout) == json.loads(first.stdout)


def test_the_user_folders_are_platformdirs_own_answers(monkeypatch, tmp_path):
    """advisor.sources.dirs computes on Linux what platformdirs would say, without importing it."""
    import platformdirs

    from advisor.sources.dirs import user_dir

    for env in ({}, {"XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                     "XDG_CONFIG_HOME": str(tmp_path / "f")}):
        for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            monkeypatch.delenv(var, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        assert user_dir("data") == __import__("pathlib").Path(platformdirs.user_data_dir("advisor"))
        assert user_dir("cache") == __import__("pathlib").Path(platformdirs.user_cache_dir("advisor", appauthor=False))
        assert user_dir("config") == __import__("pathlib").Path(platformdirs.user_config_dir("advisor"))
