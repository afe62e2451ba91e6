"""The remedy's dev check: its rule, and a tiny run of both recipes."""
from studies import remedy


def test_the_remedy_rule_needs_no_divergence_and_as_many_solved_runs():
    def row(diverged, solved, runs=5):
        return {"runs": runs, "diverged": diverged, "dev >= 95 %": solved}
    assert "passes the rule" in remedy.verdict([row(2, 3), row(0, 3)], 5)
    assert "does not pass" in remedy.verdict([row(2, 3), row(1, 4)], 5)
    assert "does not pass" in remedy.verdict([row(2, 3), row(0, 2)], 5)
    assert "not decided" in remedy.verdict([row(2, 3, runs=4), row(0, 5)], 5)
    assert "p = 0.44" in remedy.verdict([row(2, 3), row(0, 5)], 5)      # Fisher, 2/5 against 0/5


def test_a_tiny_remedy_check_trains_both_recipes_and_writes_its_table(tmp_path):
    remedy.main(["--results-dir", str(tmp_path / "out"), "--data-dir", str(tmp_path), "--length", "12",
                 "--seeds", "100", "101", "--epochs", "1", "--train", "40", "--dev", "20",
                 "--test", "20", "--jobs", "1"])
    text = (tmp_path / "out" / "remedy.md").read_text()
    for recipe in remedy.RECIPES:
        assert len(list((tmp_path / "out" / recipe / "runs").glob("*.json"))) == 2
        assert f"| {recipe} " in text
    assert "The variant" in text
