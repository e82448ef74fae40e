"""Byte units. Everything inside is an int number of bytes; these are for input and printing."""

KIB = 1024
MIB = 1024**2
GIB = 1024**3


def gib(n_bytes: float) -> float:
    return n_bytes / GIB


def fmt_gib(n_bytes, digits: int = 1) -> str:
    if n_bytes is None:
        return "?"
    return f"{n_bytes / GIB:.{digits}f} GiB"


def fmt_mib(n_bytes) -> str:
    if n_bytes is None:
        return "?"
    return f"{n_bytes / MIB:.2f} MiB"


def fmt_tokens(n) -> str:
    """8192 -> '8K', 131072 -> '128K', 1000 -> '1000'."""
    if n is None:
        return "—"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024}K"
    if n >= 10240:
        return f"{n / 1024:.1f}K"
    return str(n)
