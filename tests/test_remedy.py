"""The remedy's dev check: its rule, and a tiny run of both recipes."""
import json
import os

import pytest

from experiment import recipes
from studies import remedy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_remedy_rule_needs_no_divergence_and_as_many_solved_runs():
    def row(diverged, solved, runs=5):
        return {"recipe": "variant", "runs": runs, "diverged": diverged, "dev >= 95 %": solved}
    assert "passes the rule" in remedy.verdict([row(2, 3), row(0, 3)], 5)
    assert "does not pass" in remedy.verdict([row(2, 3), row(1, 4)], 5)
    assert "does not pass" in remedy.verdict([row(2, 3), row(0, 2)], 5)
    assert "not decided" in remedy.verdict([row(2, 3, runs=4), row(0, 5)], 5)
    assert "not decided" in remedy.verdict([row(3, 2), row(0, 1, runs=2)], 5)     # 3 more may solve
    assert "does not pass the rule (decided by its 4 runs so far)" in remedy.verdict(
        [row(3, 2), row(0, 0, runs=4)], 5)                                         # at most 1 of 5
    assert "does not pass the rule (decided by its 1 run so far)" in remedy.verdict(
        [row(3, 2), row(1, 0, runs=1)], 5)                                         # one diverged
    assert "p = 0.44" in remedy.verdict([row(2, 3), row(0, 5)], 5)      # Fisher, 2/5 against 0/5


def test_the_smaller_rate_is_the_sweeps_next_rate_below_the_recipes(monkeypatch):
    assert remedy.smaller_rate("simple_rnn") == 1e-4                  # the recipe's rate is 3e-4
    assert remedy.smaller_rate("clockwork") == 3e-5                   # the recipe's rate is 1e-4
    assert remedy.variant_recipe("smaller-rate", "simple_rnn") == (
        "integrator", {"lr": 1e-4}, "integrator_lr0.0001")
    assert remedy.variant_recipe("bounded", "alarmwork")[0] == "integrator_bounded"
    monkeypatch.setitem(remedy.SWEEPS["integrator"], "rates", (3e-4, 1e-3))
    with pytest.raises(SystemExit, match="smallest of its sweep"):
        remedy.smaller_rate("simple_rnn")


@pytest.mark.parametrize("variant", list(remedy.VARIANTS))
def test_a_tiny_remedy_check_trains_both_recipes_and_writes_its_table(tmp_path, variant):
    remedy.main(["--variant", variant, "--results-dir", str(tmp_path / "out"),
                 "--data-dir", str(tmp_path), "--length", "12", "--seeds", "100", "101",
                 "--epochs", "1", "--train", "40", "--dev", "20", "--test", "20", "--jobs", "1"])
    text = (tmp_path / "out" / "remedy.md").read_text()
    labels = [remedy.PLAIN, remedy.variant_recipe(variant, "simple_rnn")[2]]
    for label in labels:
        assert len(list((tmp_path / "out" / label / "runs").glob("*.json"))) == 2
        assert f"| {label} " in text
    assert "The variant" in text
    lrs = {json.loads(path.read_text())["config"]["lr"]
           for path in (tmp_path / "out" / labels[1] / "runs").glob("*.json")}
    assert lrs == {1e-4 if variant == "smaller-rate" else 3e-4}


@pytest.mark.parametrize("variant", list(remedy.VARIANTS))
def test_a_variants_recipe_joins_the_reach_study_only_once_its_committed_check_passes(variant):
    path = os.path.join(ROOT, remedy.VARIANTS[variant]["results_dir"], "remedy.md")
    passed = os.path.isfile(path) and "The variant passes the rule." in open(path).read()
    assert (remedy.VARIANTS[variant]["recipe"] not in recipes.NOT_PASSED) == passed
