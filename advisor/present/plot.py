"""A small text plot: straight lines y = fixed + slope x on a character grid. No plotting dependency."""

from __future__ import annotations
from advisor.core.record import record


MARKERS = "L123456789abcdefghij"
POINT_MARKERS = "123456789abcdefghijklmnopqrstuvwxyz"


@record
class Line:
    label: str
    fixed: float  # y at x = 0
    slope: float  # y per unit of x


def line_plot(lines: list[Line], x_max: float, width: int = 60, height: int = 16, x_label: str = "",
              y_label: str = "", mark_x: float | None = None) -> list[str]:
    """Draw each line with its own marker (the first is 'L'); `mark_x` draws a vertical '|' (e.g. your volume)."""
    if x_max <= 0 or not lines:
        return []
    y_max = max(max(line.fixed, line.fixed + line.slope * x_max) for line in lines) or 1.0
    grid = [[" "] * width for _ in range(height)]
    if mark_x is not None and 0 <= mark_x <= x_max:
        col = min(width - 1, round(mark_x / x_max * (width - 1)))
        for row in grid:
            row[col] = "|"
    for i, line in enumerate(lines):
        marker = MARKERS[i % len(MARKERS)]
        for col in range(width):
            y = line.fixed + line.slope * x_max * col / (width - 1)
            row = height - 1 - round(y / y_max * (height - 1))
            if 0 <= row < height:
                grid[row][col] = marker
    out = _frame(grid, y_max, y_label, x_label, readable(x_max))
    legend = "   ".join(f"{MARKERS[i % len(MARKERS)]} = {line.label}" for i, line in enumerate(lines))
    out.append(" " * 11 + legend + ("   | = your volume" if mark_x is not None else ""))
    return out


@record
class Point:
    label: str
    x: float
    y: float


def scatter_plot(points: list[Point], width: int = 60, height: int = 14, x_label: str = "",
                 y_label: str = "") -> list[str]:
    """Each point as its own marker (1, 2, ... then letters) on a grid from 0 to the largest x and y; a legend
    names them. Points landing on the same cell keep the first marker."""
    if not points:
        return []
    x_max = max(p.x for p in points) or 1.0
    y_max = max(p.y for p in points) or 1.0
    grid = [[" "] * width for _ in range(height)]
    marks = POINT_MARKERS
    for i, p in enumerate(points[:len(marks)]):
        col = min(width - 1, round(p.x / x_max * (width - 1)))
        row = height - 1 - min(height - 1, round(p.y / y_max * (height - 1)))
        if grid[row][col] == " ":
            grid[row][col] = marks[i]
    out = _frame(grid, y_max, y_label, x_label, readable(x_max))
    out += [" " * 11 + f"{marks[i]} = {p.label}" for i, p in enumerate(points[:len(marks)])]
    return out


SCALES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))


def readable(value: float) -> str:
    """An axis number a person reads at a glance: 91.3M, 1.2B, 15K, 266, 0.5 (never 9.13e+07)."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    for unit, size in SCALES:
        if v >= size * 0.9995:  # 999,950 reads as 1M, not 1e+03K
            return f"{sign}{_digits(v / size)}{unit}"
    return sign + _digits(v)


def _digits(v: float) -> str:
    """Three significant digits, no exponent, no trailing zeros: 91.3, 15, 0.125, 0.00012."""
    if v == 0:
        return "0"
    if v >= 100:
        return f"{v:.0f}"
    text = f"{v:.3g}" if v >= 1e-3 else f"{v:.6f}".rstrip("0")
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _frame(grid: list[list[str]], y_max: float, y_label: str, x_label: str, x_max_text: str) -> list[str]:
    """The grid with its y ticks (top, middle, 0), the x axis from 0 to `x_max_text`, and the axis labels."""
    height, width = len(grid), len(grid[0])
    out = [y_label]
    for r, row in enumerate(grid):
        y = y_max * (height - 1 - r) / (height - 1)
        tick = f"{readable(y):>9} |" if r in (0, height // 2, height - 1) else " " * 9 + " |"
        out.append(tick + "".join(row))
    out.append(" " * 10 + "+" + "-" * width)
    out.append(" " * 11 + f"0{x_label:^{width - 12}}{x_max_text:>10}")
    return out
