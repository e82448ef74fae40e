#!/usr/bin/env python3
"""Accuracy against real measurements: python bench/validate.py DIR_OR_CSV [...] [--json]

Reads files with the columns of calibration/memory_logs.csv or throughput.csv (any such file, seen before or
not), predicts every row with the installed advisor, and prints measured vs predicted per row, the rows it
could not map (with the reason) and a summary per quantity against the targets. Exit status 0 whether or not
targets are met (the test suite guards them); 2 for unreadable input.
"""

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="directories of CSV files, or CSV files")
    parser.add_argument("--json", action="store_true", help="the summary (and unmapped rows) as JSON")
    args = parser.parse_args(argv)

    from advisor.errors import AdvisorError
    from advisor.present.report import validation_text
    from advisor.apps.validate import summary, validate

    try:
        checks, skipped = validate(args.paths)
    except AdvisorError as exc:
        print(f"validate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    result = summary(checks)
    if args.json:
        print(json.dumps({"summary": result, "misses": [
            {"row": c.row_id, "quantity": c.quantity, "measured": c.measured, "predicted": c.predicted,
             "error": c.error} for c in checks if c.within is False],
            "unmapped": [u.__dict__ for u in skipped]}, indent=2))
    else:
        print(validation_text(checks, skipped, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
