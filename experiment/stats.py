"""What "solved" means, and the statistics that the tables and comparisons rest on.

A cell (model, length) holds a few runs, one per seed. Its runs either learn the task
(test accuracy near 100 %) or stay on the plateau of answering about 0 (near 35 %), so a
cell is described by how many of its runs solved the task, with a confidence interval for
that rate, and by the median and range of its test accuracies: a mean ± std of a cell
whose runs split describes none of them. Two settings are compared cell by cell with
Fisher's exact test on their solved counts. The tests themselves come from scipy.stats.
"""
import math

import numpy as np

SOLVED_ACCURACY = 95.0  # test %: far above the plateau of answering ~0 (~35 %), below learned runs

SIGNIFICANCE_LEVEL = 0.05  # a difference is called significant when its p is below this


def diverged(test_accuracy):
    """True for a run without a test accuracy (None or NaN): its loss became non-finite."""
    return test_accuracy is None or math.isnan(test_accuracy)


def solved(test_accuracy):
    """True when a run's test accuracy (%) is at least SOLVED_ACCURACY; a diverged run did not."""
    return not diverged(test_accuracy) and test_accuracy >= SOLVED_ACCURACY


def solved_rate_interval(num_solved, num_runs, confidence=0.95):
    """Wilson score interval (low, high) for the solved rate, as fractions in [0, 1]."""
    from scipy import stats as scipy_stats   # here, not above: it takes seconds to import, and
                                             # a training worker or a --help never needs it
    interval = scipy_stats.binomtest(num_solved, num_runs).proportion_ci(
        confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def fisher_p(solved_a, runs_a, solved_b, runs_b):
    """Two-sided p of Fisher's exact test: do two settings solve at the same rate?"""
    from scipy import stats as scipy_stats
    table = [[solved_a, runs_a - solved_a], [solved_b, runs_b - solved_b]]
    return float(scipy_stats.fisher_exact(table, alternative="two-sided").pvalue)


def summarize_cell(test_accuracies):
    """The runs of one cell in numbers: counts, solved-rate interval, and accuracy statistics
    (median, min, max, mean, sample std in %) over the runs that did not diverge."""
    finished = np.array([a for a in test_accuracies if not diverged(a)], dtype=float)
    num_runs = len(test_accuracies)
    num_solved = sum(solved(a) for a in test_accuracies)
    low, high = solved_rate_interval(num_solved, num_runs) if num_runs else (math.nan, math.nan)
    some = len(finished) > 0
    return {
        "runs": num_runs, "diverged": num_runs - len(finished), "solved": num_solved,
        "solved_rate_ci_low": low, "solved_rate_ci_high": high,
        "median": float(np.median(finished)) if some else math.nan,
        "min": float(finished.min()) if some else math.nan,
        "max": float(finished.max()) if some else math.nan,
        "mean": float(finished.mean()) if some else math.nan,
        "std": float(finished.std(ddof=1)) if len(finished) > 1 else math.nan,
    }
