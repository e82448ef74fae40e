"""One place that turns what a command found into table, JSON, CSV or Markdown text.

A command builds a `Document`: the lines a person reads before and after its main table, the table itself,
flat records for CSV (raw numbers, one row per record) and the JSON object. `render` does the rest, so every
command gets `--format`, `--quiet`, 80-column wrapping and colour rules the same way.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import field, replace
from advisor.core.record import record

FORMATS = ("table", "json", "csv", "markdown")
TERMINAL_WIDTH = 80  # the classic terminal, and the width when stdout is not one (a pipe, a file)
MIN_WRAPPED_COLUMN = 8  # a column is never wrapped narrower than this many characters
# "Power    363 W ...": continue under "363" (an eight-letter label, "Capacity 218K ...", needs but one space)
HANGING_LABEL = re.compile(r"^ *(?:[A-Za-z]\S{0,10}  +|[A-Z][a-z]{7} )(?=\S)")
COLUMN_GAP = 2  # tabulate's "simple" layout puts two spaces between columns
WORD_PIECES = re.compile(r"[^\s-]*-+|[^\s-]+")  # where a word may break: after its hyphens ("DeepSeek-", "LLM-67B")

# Cell values that carry a verdict, and their colour on a terminal.
STATUS_COLOURS = {"GPU": "green", "yes": "green", "GPU+RAM": "yellow", "RAM": "yellow", "no fit": "red",
                  "NO": "red", "never": "red", "GPU?": "yellow", "GPU+RAM?": "yellow", "GPU+RAM (experts)": "yellow", "GPU+RAM (experts)?": "yellow", "RAM?": "yellow", "?": "yellow"}


@record
class Table:
    """Rows under headers, as every output format writes them."""

    headers: tuple[str, ...]
    rows: tuple[tuple, ...]
    status_column: int | None = None  # cells of this column are coloured by STATUS_COLOURS on a terminal
    wrap: tuple[int, ...] | None = None  # columns that may wrap to fit the width, preferred first (None: any)


@record
class Document:
    """What a command says, in every format. `records` and `table` may also be given as functions that make them,
    for documents whose JSON is what is asked for most (`check --json` need not lay out 150 table rows)."""

    data: object  # the JSON value
    records: tuple[dict, ...] = ()  # CSV rows
    head: tuple[str, ...] = ()  # lines before the table
    table: Table | None = None
    tail: tuple[str, ...] = ()  # lines after the table (legends, notes, --explain)
    extra: tuple[str, ...] = field(default=())  # preformatted blocks (a plot) kept as they are, after the tail


def colour_enabled(stream=None) -> bool:
    """Colour only on a terminal, never with NO_COLOR set to anything non-empty (no-color.org) or TERM=dumb."""
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def terminal_width(stream=None) -> int:
    """The width to lay text out in: the terminal's when `stream` (stdout) is one ($COLUMNS first, as the shell
    sets it), else TERMINAL_WIDTH, so that a pipe or a file always gets the same 80-column text."""
    stream = stream or sys.stdout
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return TERMINAL_WIDTH
    import shutil  # here: it imports bz2, lzma and zlib (~4 ms), which a pipe never needs

    columns = shutil.get_terminal_size((TERMINAL_WIDTH, 24)).columns
    return columns if columns > 0 else TERMINAL_WIDTH


def render(doc: Document, fmt: str, quiet: bool = False, colour: bool = False, width: int | None = None) -> str:
    """`width` None: the terminal's (`terminal_width`)."""
    if width is None:
        width = terminal_width()
    if fmt == "json":
        return to_json(doc.data)
    if callable(doc.records) or callable(doc.table):  # made now that a format that needs them is asked for
        doc = replace(doc, records=doc.records() if callable(doc.records) else doc.records,
                      table=doc.table() if callable(doc.table) else doc.table)
    if fmt == "csv":
        return csv_text(doc.records)
    if fmt == "markdown":
        return markdown_text(doc, quiet)
    return table_text(doc, quiet, colour, width)


def table_text(doc: Document, quiet: bool, colour: bool, width: int) -> str:
    table = fit_table(doc.table, width, colour) if doc.table else ""
    if quiet:
        return table
    out = wrap_lines(doc.head, width)
    if table:
        out += ([""] if out else []) + [table]
    if doc.tail:
        out += [""] + wrap_lines(doc.tail, width)
    for block in doc.extra:
        out += ["", block]
    return "\n".join(out)


def fit_table(table: Table, width: int = TERMINAL_WIDTH, colour: bool = False) -> str:
    """tabulate's "simple" layout, no padding beyond the column gap, the widest columns wrapped until it fits."""
    import tabulate as tabulate_module

    rows = [list(map(_cell, r)) for r in table.rows]
    headers = list(table.headers)
    widths = [max([len(h)] + [len(line) for r in rows for line in r[i].split("\n")]) for i, h in enumerate(headers)]
    limits = list(widths)
    excess = sum(limits) + COLUMN_GAP * (len(limits) - 1) - width
    # first wrap at spaces, in the table's order of preference, down to each column's longest word
    for i in (table.wrap or ()):
        floor = max([MIN_WRAPPED_COLUMN, len(table.headers[i])]
                    + [len(word) for r in rows for word in r[i].split()])
        cut = max(0, min(excess, limits[i] - floor))
        limits[i] -= cut
        excess -= cut
    # then break words after their hyphens ("DeepSeek-" / "LLM-67B"), and only then, where nothing else fits,
    # inside a word; widest column first
    wrappable = range(len(limits)) if table.wrap is None else table.wrap
    pieces = {i: max([MIN_WRAPPED_COLUMN, len(table.headers[i])]
                     + [len(p) for r in rows for p in WORD_PIECES.findall(r[i])]) for i in wrappable}
    for floors in (pieces, {i: MIN_WRAPPED_COLUMN for i in wrappable}):
        while excess > 0:
            widest = max(wrappable, key=lambda i: (limits[i] > floors[i], limits[i]))
            if limits[widest] <= floors[widest]:
                break
            limits[widest] -= 1
            excess -= 1
    # wrapped here, not by tabulate: its textwrap breaks a hyphen only between two letters, so "qwen3.5-122b-a10b"
    # came out as "qwen3.5-122" / "b-a10b"
    for r in rows:
        for i, (lim, w) in enumerate(zip(limits, widths)):
            if lim < w:
                r[i] = wrap_cell(r[i], lim)
    if colour and table.status_column is not None:
        import click

        for r in rows:
            tint = STATUS_COLOURS.get(r[table.status_column].replace("\n", " "))
            if tint:  # line by line, so that a wrapped cell's colour does not run into the next column
                r[table.status_column] = "\n".join(click.style(line, fg=tint)
                                                    for line in r[table.status_column].split("\n"))
    saved = tabulate_module.MIN_PADDING
    tabulate_module.MIN_PADDING = 0
    try:
        return tabulate_module.tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    finally:
        tabulate_module.MIN_PADDING = saved


def wrap_cell(text: str, width: int) -> str:
    """`text` in lines of at most `width` characters, broken at spaces, then after hyphens ("DeepSeek-" /
    "LLM-67B"), and inside a piece only when the piece alone is wider than the line."""
    out = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            pieces = WORD_PIECES.findall(word)
            for n, piece in enumerate(pieces):
                joiner = " " if n == 0 and line else ""
                if len(line) + len(joiner) + len(piece) <= width:
                    line += joiner + piece
                    continue
                if line:
                    out.append(line)
                while len(piece) > width:
                    out.append(piece[:width])
                    piece = piece[width:]
                line = piece
        out.append(line)
    return "\n".join(out)


def wrap_lines(lines, width: int = TERMINAL_WIDTH) -> list[str]:
    """Wrap long prose lines at spaces. A continuation lines up under the text of a "Label    text" line, else it
    is indented two more than the line it continues."""
    import textwrap

    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        label = HANGING_LABEL.match(line)
        indent = " " * (label.end() if label else len(line) - len(line.lstrip(" ")) + 2)
        out += textwrap.wrap(line, width=width, subsequent_indent=indent, break_long_words=False,
                             break_on_hyphens=False) or [line]
    return out


def csv_text(records) -> str:
    """RFC 4180 CSV: a header of every key seen (first-seen order), nested values as JSON."""
    import csv
    import io

    keys: list[str] = []
    for r in records:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: _csv_value(v) for k, v in r.items()})
    return buf.getvalue().rstrip("\n")


def _csv_value(value):
    import json

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON output, not Python's True
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def markdown_text(doc: Document, quiet: bool) -> str:
    out = []
    if doc.head and not quiet:
        out += [_md_escape(h.strip()) + "  " for h in doc.head] + [""]
    if doc.table:
        out.append(_md_table(doc.table))
    if doc.tail and not quiet:
        out += [""] + [f"- {_md_escape(t.strip())}" for t in doc.tail if t.strip()]
    for block in () if quiet else doc.extra:
        out += ["", "```", block, "```"]
    return "\n".join(out)


def _md_table(table: Table) -> str:
    from tabulate import tabulate

    rows = [[_cell(c).replace("\n", " ").replace("|", "\\|") for c in r] for r in table.rows]
    headers = [h.replace("|", "\\|") for h in table.headers]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _md_escape(text: str) -> str:
    """Keep a line literal in Markdown: escape the characters that would start emphasis or a table."""
    for ch in ("\\", "*", "_", "|", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _cell(value) -> str:
    return "" if value is None else str(value)


def scalars(record: dict) -> dict:
    """The flat part of a JSON record, for a CSV row: a `*_range` pair becomes `*_low` and `*_high` columns
    (empty when unknown, so every row has the same columns); other lists and objects stay in the JSON output."""
    out = {}
    for key, value in record.items():
        if key.endswith("_range"):
            low, high = value if isinstance(value, (list, tuple)) and len(value) == 2 else (None, None)
            out[key[:-len("range")] + "low"], out[key[:-len("range")] + "high"] = low, high
        elif not isinstance(value, (dict, list, tuple)):
            out[key] = value
    return out


def to_json(obj, pretty: bool | None = None) -> str:
    """Indented for a person at a terminal, compact for a pipe (the C encoder: a full check grid is ~10x
    faster to write without indentation). `python -m json.tool` pretty-prints either."""
    if pretty is None:
        import sys

        pretty = sys.stdout is not None and sys.stdout.isatty()  # None: started with stdout closed
    try:
        # allow_nan=False: JSON has no NaN or Infinity (json.dumps would write bare NaN, which strict parsers reject)
        return json.dumps(obj, indent=2 if pretty else None, allow_nan=False)
    except ValueError:
        from advisor.errors import AdvisorError

        where = _first_non_finite(obj, "")
        if where is None:
            raise  # not a number's fault (a circular reference): a bug to see whole
        raise AdvisorError(f"internal error: {where} is not a finite number (NaN or infinity); no JSON written. "
                           "Please report the command that gave this") from None


def _first_non_finite(obj, path: str, seen: set | None = None) -> str | None:
    """The JSON path (`results[3].kv_bytes`) of the first NaN or infinity in `obj`, for the error naming it."""
    import math

    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "the document")
    seen = set() if seen is None else seen
    if id(obj) in seen:  # a circular reference: json.dumps says so itself
        return None
    if isinstance(obj, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    seen.add(id(obj))
    for sub_path, value in items:
        found = _first_non_finite(value, sub_path, seen)
        if found:
            return found
    return None
