"""The CLI's answers to a fixed set of questions stay what tests/golden/*.json recorded.

The files were written before the deployment-model refactor (issue 13); a change to any number shows up here and
must be an intended fix, regenerated with `python tests/golden/cases.py --write` in the commit that makes it.
Integers and strings must match exactly; floats to 1e-9 relative (summing the same terms in another order may move
the last bit, never a printed digit).
"""

import datetime as dt
import json
import math

import pytest

from golden.cases import cases, path_of, run

GOLDEN_DATE = dt.date(2026, 12, 1)  # the day the files were written: API prices deprecated after it still count
FLOAT_REL_TOL = 1e-9


def differences(got, want, where="$"):
    """Paths where `got` differs from `want` (empty when they agree)."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        return [] if math.isclose(got, want, rel_tol=FLOAT_REL_TOL, abs_tol=1e-12) else [f"{where}: {got!r} != {want!r}"]
    if type(got) is not type(want):
        return [f"{where}: {got!r} != {want!r}"]
    if isinstance(want, dict):
        out = [f"{where}.{k}: missing" for k in want if k not in got]
        out += [f"{where}.{k}: unexpected" for k in got if k not in want]
        for k in want:
            if k in got:
                out += differences(got[k], want[k], f"{where}.{k}")
        return out
    if isinstance(want, list):
        if len(got) != len(want):
            return [f"{where}: {len(got)} items != {len(want)}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in differences(g, w, f"{where}[{i}]")]
    return [] if got == want else [f"{where}: {got!r} != {want!r}"]


def test_differences_sees_a_changed_number_and_forgives_float_noise():
    assert differences({"a": [1, 2.0]}, {"a": [1, 2.0 + 1e-13]}) == []
    assert differences({"a": [1, 2.5]}, {"a": [1, 2.0]}) == ["$.a[1]: 2.5 != 2.0"]
    assert differences({"a": 1}, {"a": 1, "b": None}) == ["$.b: missing"]
    assert differences({"a": None}, {"a": 0}) == ["$.a: None != 0"]


@pytest.mark.parametrize("name", sorted(cases()))
def test_answer_matches_the_golden_file(name, monkeypatch):
    monkeypatch.setattr("advisor.cli._today", lambda: GOLDEN_DATE)
    expected = json.loads(path_of(name).read_text())
    diff = differences(run(cases()[name]), expected)
    assert not diff, f"{len(diff)} differences, first: " + "; ".join(diff[:8])
