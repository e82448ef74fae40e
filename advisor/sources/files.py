"""Reading a user's file safely: only a regular file, never more than a cap, every OS error as one line.

A FIFO named as a model or price file would block `open` forever, and /dev/zero would be read until memory runs
out. The rule (the GGUF reader follows it too): open without blocking (O_NONBLOCK: a FIFO's open returns at once,
a regular file ignores the flag), `fstat` the descriptor that was opened, not the name (nothing can swap the file
between the check and the read), refuse anything that is not S_ISREG, then read at most `limit` bytes and refuse
a file that has more.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from advisor.errors import ProfileError

MIB = 1 << 20
CONFIG_JSON_LIMIT = 16 * MIB  # the largest real config.json is a few hundred KiB
TOML_LIMIT = 4 * MIB  # config.toml, prices.toml, a user profile: a few KiB each


class FileRefused(ProfileError):
    """The path is not a regular file, is larger than the cap, or could not be opened or read."""


def _what(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def open_regular(path: Path | str) -> int:
    """A read-only descriptor on `path`, which must be a regular file (symlinks to one are fine); the caller closes
    it. Raises FileRefused, or FileNotFoundError (an OSError) when there is no such file, for callers that treat a
    missing file differently."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise FileRefused(f"{path}: cannot open ({_what(exc)})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise FileRefused(f"{path}: cannot read ({_what(exc)})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise FileRefused(f"{path}: is {kind}, not a regular file") from None
    return fd


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Raises FileRefused (one line naming the file), or
    FileNotFoundError when there is no such file."""
    fd = open_regular(path)
    try:
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileRefused(f"{path}: cannot read ({_what(exc)})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileRefused(f"{path}: larger than {limit // MIB} MiB; not a file of this kind")
    return b"".join(chunks)


def read_text(path: Path | str, limit: int) -> str:
    """`read_regular` decoded as UTF-8 (a FileRefused naming the file when it is not)."""
    raw = read_regular(path, limit)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileRefused(f"{path}: not UTF-8 text") from None
