"""A cache of parsed data files, so that start-up does not parse every TOML file again (tomllib is pure Python:
~40 ms for the shipped profiles). One pickle per kind in the user cache directory, keyed by the package version and
the path, size and modification time of every file it was built from; anything else and it is rebuilt.

Writes go to a temporary file renamed into place, so two processes writing at once leave one whole file, and a
cache that cannot be read or written is simply not used. `ADVISOR_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from advisor import __version__

FORMAT = 2  # bump when what is pickled changes shape (2: a layout's groups as one pickled blob)


def _signature(files) -> tuple:
    sig = [__version__, FORMAT]
    for path in sorted(str(p) for p in files):
        try:
            st = os.stat(path)
        except OSError:
            return ()  # a file vanished: do not cache
        sig.append((path, st.st_size, st.st_mtime_ns))
    return tuple(sig)


def _cache_dir() -> Path | None:
    try:
        from advisor.sources.dirs import user_dir

        return user_dir("cache")
    except Exception:  # no home directory to be had
        return None


def cached(kind: str, files, build):
    """`build()`'s result, from the cache when none of `files` changed since it was stored."""
    if os.environ.get("ADVISOR_NO_CACHE"):
        return build()
    sig = _signature(files)
    folder = _cache_dir()
    if not sig or folder is None:
        return build()
    path = folder / f"{kind}.pickle"
    try:
        with open(path, "rb") as fh:
            stored_sig, value = pickle.load(fh)
        if stored_sig == sig:
            return value
    except Exception:  # absent, truncated, from another version: rebuild
        pass
    value = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{kind}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump((sig, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except Exception:
        pass  # a read-only home, a full disk: the answer does not depend on the cache
    return value
