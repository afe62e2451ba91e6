"""The definition of "solved", the solved-rate interval and Fisher's exact test."""
import math
import pathlib
import re

import pytest

from experiment import stats

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent


def test_a_run_solves_the_task_at_95_per_cent_and_above():
    assert stats.SOLVED_ACCURACY == 95.0
    assert stats.solved(95.0)   # the boundary is inclusive
    assert stats.solved(100.0)
    assert not stats.solved(94.9)
    assert not stats.solved(35.0)   # the plateau of answering about 0


def test_a_diverged_run_did_not_solve_the_task():
    assert not stats.solved(None)
    assert not stats.solved(math.nan)
    assert stats.diverged(None) and stats.diverged(math.nan) and not stats.diverged(0.0)


def test_the_solved_threshold_is_defined_in_stats_only():
    # a name about "solved" given a number, or a test accuracy compared with a literal
    definition = re.compile(r"(?i)\b\w*solved\w*\s*=\s*\d\d[\d.]*|test_accuracy\w*\s*>=?\s*\d")
    sources = sorted(p for p in REPOSITORY.glob("**/*.py") if not {"tests", ".venv"} & set(p.parts))
    assert REPOSITORY / "experiment" / "stats.py" in sources
    found = {str(path.relative_to(REPOSITORY)): definition.findall(path.read_text()) for path in sources}
    assert found.pop("experiment/stats.py") == ["SOLVED_ACCURACY = 95.0"]
    assert {name: hits for name, hits in found.items() if hits} == {}


@pytest.mark.parametrize("num_solved, num_runs, low, high", [
    (0, 5, 0.0, 0.4345), (3, 5, 0.2307, 0.8824), (5, 5, 0.5655, 1.0), (1, 20, 0.0089, 0.2361)])
def test_the_solved_rate_interval_is_the_wilson_interval_of_known_values(
        num_solved, num_runs, low, high):
    assert stats.solved_rate_interval(num_solved, num_runs) == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("num_solved, num_runs", [(0, 5), (2, 5), (3, 5), (5, 5), (7, 20), (1, 3)])
def test_the_solved_rate_interval_agrees_with_the_closed_form_wilson_formula(num_solved, num_runs):
    z = 1.959963984540054   # the 97.5 % quantile of the standard normal distribution
    rate, n = num_solved / num_runs, num_runs
    centre = (rate + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half_width = z / (1 + z ** 2 / n) * math.sqrt(rate * (1 - rate) / n + z ** 2 / (4 * n ** 2))
    assert stats.solved_rate_interval(num_solved, num_runs) == pytest.approx(
        (centre - half_width, centre + half_width), abs=1e-12)


def test_fisher_exact_test_gives_the_known_two_sided_p_values():
    # 3/5 against 0/5: the tables as or less likely than this one are 3:0 and 0:3, 1/12 each
    assert stats.fisher_p(3, 5, 0, 5) == pytest.approx(1 / 6)
    assert stats.fisher_p(0, 5, 3, 5) == pytest.approx(1 / 6)
    # 5/5 against 3/5: P(both failures in the second) = 10/45, and the first as likely: 20/45
    assert stats.fisher_p(5, 5, 3, 5) == pytest.approx(4 / 9)
    assert stats.fisher_p(5, 5, 0, 5) == pytest.approx(2 / 252)   # 2 / C(10, 5)
    assert stats.fisher_p(2, 5, 2, 5) == pytest.approx(1.0)


def test_a_cell_summary_counts_diverged_runs_as_not_solved_and_leaves_them_out_of_the_median():
    cell = stats.summarize_cell([99.0, None, 30.0, 96.0, math.nan])
    assert (cell["runs"], cell["diverged"], cell["solved"]) == (5, 2, 2)
    interval = (cell["solved_rate_ci_low"], cell["solved_rate_ci_high"])
    assert interval == pytest.approx((0.1176, 0.7693), abs=1e-4)   # Wilson, 2/5: 3/5's mirrored
    assert (cell["median"], cell["min"], cell["max"]) == (96.0, 30.0, 99.0)
    assert cell["mean"] == pytest.approx(75.0)
    assert cell["std"] == pytest.approx(math.sqrt((24 ** 2 + 45 ** 2 + 21 ** 2) / 2))
