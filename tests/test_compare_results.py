"""The protocol-vs-variant comparison table and figure."""
import pytest

from studies import compare_results
from experiment import report
from experiment import selection
from experiment import stats
import train_rnn
from experiment.runs import save_record
from test_report import fake_record


@pytest.fixture(scope="module")
def two_settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    data_dir = str(root / "data")
    common = ["--lengths", "4", "6", "--train", "40", "--dev", "20", "--test", "20", "--epochs", "2",
              "--models", "lstm", "alarmwork", "--seeds", "2", "--data-dir", data_dir, "--jobs", "1"]
    train_rnn.main(common + ["--results-dir", str(root / "protocol")])
    train_rnn.main(common + ["--results-dir", str(root / "clip"), "--clip-grad-norm", "0.05"])
    return root


def test_comparison_table_has_each_setting_per_model_and_length(two_settings, capsys):
    root = two_settings
    compare_results.main([str(root / "protocol"), str(root / "clip"), "--labels", "protocol",
                          "clip 0.05", "--output", str(root)])
    text = (root / "comparison.md").read_text()
    assert text.strip() == capsys.readouterr().out.strip()
    assert "each cell compares the seeds that every setting has for it" in text
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert "protocol: test %" in lines[0] and "clip 0.05: test %" in lines[0]
    assert "clip 0.05: clipped %" in lines[0] and "protocol: clipped %" not in lines[0]
    body = lines[1:]
    assert [cells.split("|")[1:3] for cells in body] == [
        [f" {m:<12} ", f" {L}   "] for m in ("LSTM", "AlarmworkNet") for L in (4, 6)]
    for folder in ("protocol", "clip"):   # each cell comes from its folder's own accuracy.csv
        runs = compare_results.load_runs(str(root / folder))
        cell = runs[(runs["model"] == "LSTM") & (runs["seq_len"] == 4)]["test_accuracy"]
        expected = compare_results.report.cell_text(list(cell))
        assert expected in body[0]
    assert (root / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_clipped_runs_record_norms_before_clipping_and_how_often_they_were_clipped(two_settings):
    runs = compare_results.load_runs(str(two_settings / "clip"))
    assert (runs["clip_grad_norm"] == 0.05).all()
    assert (runs["max_epoch_grad_norm"] > 0.05).any()
    for history in runs["history"]:
        for epoch in history[:-1]:
            assert epoch["grad_norm_max"] >= epoch["grad_norm"] > 0
            assert 0.0 <= epoch["clipped_fraction"] <= 1.0
    clipped = [e["clipped_fraction"] for h in runs["history"] for e in h[:-1]]
    assert max(clipped) > 0   # a threshold this low clips some batches
    protocol = compare_results.load_runs(str(two_settings / "protocol"))
    assert protocol["clipped_fraction"].isna().all()


def test_a_folder_without_results_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        compare_results.main([str(tmp_path), str(tmp_path), "--output", str(tmp_path)])
    assert "accuracy.csv not found" in str(exit_info.value.code)


def test_each_cell_compares_only_the_runs_every_setting_has(two_settings):
    protocol = compare_results.load_runs(str(two_settings / "protocol"))
    clip = compare_results.load_runs(str(two_settings / "clip"))
    clip = clip[(clip["model"] == "AlarmworkNet") | (clip["seed"] == 1)]   # LSTM: seed 1 only
    (_, kept_protocol), (_, kept_clip) = compare_results.common_runs([("a", protocol), ("b", clip)])
    for kept in (kept_protocol, kept_clip):
        assert set(kept[kept["model"] == "LSTM"]["seed"]) == {1}
        assert set(kept[kept["model"] == "AlarmworkNet"]["seed"]) == {0, 1}
    assert len(kept_protocol) == len(kept_clip) == 6


def fake_records(accuracies, clip_grad_norm=None):
    """Made-up AlarmworkNet runs: {seq_len: [test accuracy per seed]}."""
    return [fake_record("alarmwork", seq_len, seed, accuracy, clip_grad_norm)
            for seq_len, per_seed in accuracies.items()
            for seed, accuracy in enumerate(per_seed)]


def write_fake_results(folder, records):
    """A results folder of `records`, reported as train_rnn.py --report does: one table per
    configuration."""
    for record in records:
        save_record(str(folder), record)
    grouped, titles = selection.by_configuration(records)
    report.write_report(grouped, str(folder), titles)


@pytest.fixture
def fake_settings(tmp_path):
    write_fake_results(tmp_path / "protocol", fake_records(PROTOCOL))
    # clipping: 5/5 at L = 70 (seed 5, which the protocol lacks, is left out), 3/5 at L = 100
    write_fake_results(tmp_path / "clip", fake_records({**CLIP, 70: [99.0] * 6}, 1.0))
    return tmp_path


PROTOCOL = {70: [30.0] * 5, 100: [30.0] * 5}
CLIP = {70: [99.0] * 5, 100: [99.0, 96.0, 95.0, 30.0, None]}
# their cells (test %, test %, difference) by L: 0/5 against 5/5, p = 2 / C(10, 5) = 0.0079;
# 0/5 against 3/5, p = 1/6
EXPECTED_CELLS = {
    "70": ("0/5 solved [0–43 %]; median 30.0 (30.0–30.0)",
           "5/5 solved [57–100 %]; median 99.0 (99.0–99.0)", "yes (p = 0.0079)"),
    "100": ("0/5 solved [0–43 %]; median 30.0 (30.0–30.0)",
            "3/5 solved [23–88 %], 1 diverged; median 95.5 (30.0–99.0)", "no (p = 0.17)")}


def comparison_rows(folder, argv):
    """The table of comparison.md as lists of stripped cells, the header first (the rule
    under it starts with '|-', not '| ')."""
    compare_results.main(argv + ["--output", str(folder)])
    lines = [line for line in (folder / "comparison.md").read_text().splitlines()
             if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_each_cell_says_whether_the_solved_counts_differ_by_fishers_exact_test(fake_settings):
    root = fake_settings
    header, *rows = comparison_rows(root, [str(root / "protocol"), str(root / "clip"),
                                           "--labels", "protocol", "clip 1.0"])
    assert header[-1] == "clip 1.0: difference"
    assert {row[1]: (row[2], row[4], row[-1]) for row in rows} == EXPECTED_CELLS
    text = (root / "comparison.md").read_text()
    assert ">= 95 %" in text and "Fisher's exact test (two-sided p)" in text and "±" not in text
    assert (root / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_each_setting_after_the_first_is_tested_against_the_first(fake_settings):
    root = fake_settings
    header, *rows = comparison_rows(root, [str(root / "protocol"), str(root / "clip"),
                                           str(root / "clip"), "--labels", "a", "b", "c"])
    assert header[-2:] == ["b: difference", "c: difference"]
    assert [row[-2:] for row in rows] == [["yes (p = 0.0079)"] * 2, ["no (p = 0.17)"] * 2]


def test_the_comparison_counts_solved_runs_by_the_threshold_in_stats(fake_settings, monkeypatch):
    root = fake_settings
    monkeypatch.setattr(stats, "SOLVED_ACCURACY", 96.0)   # 95.0 no longer solves: 2/5 at L = 100
    _, _, row = comparison_rows(root, [str(root / "protocol"), str(root / "clip")])
    assert row[4].startswith("2/5 solved") and row[-1] == "no (p = 0.44)"


@pytest.mark.parametrize("p, text", [(1.0, "= 1"), (1 / 6, "= 0.17"), (0.0499, "= 0.0499"),
                                     (0.0079, "= 0.0079"), (0.0004, "< 0.001")])
def test_p_values_are_written_with_two_digits_and_never_as_a_rounded_five_per_cent(p, text):
    assert compare_results.p_text(p) == text


# ------------------------------------------------------------------------------ configurations

@pytest.fixture
def mixed_folder(tmp_path):
    """One results folder holding the runs of both settings above, without and with clipping."""
    folder = tmp_path / "both"
    write_fake_results(folder, fake_records(PROTOCOL) + fake_records(CLIP, 1.0))
    return folder


def test_a_folder_of_several_configurations_is_refused_in_one_line_that_names_them(
        mixed_folder, tmp_path):
    output = tmp_path / "comparison"
    output.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        compare_results.main([str(mixed_folder), str(mixed_folder), "--output", str(output)])
    assert exit_info.value.code == (
        f"error: the runs in {mixed_folder} form 2 configurations (clip_grad_norm = none; "
        "clip_grad_norm = 1.0); compare one with --select, e.g. --select clip_grad_norm=none, "
        "or keep each in a results folder of its own")
    assert list(output.iterdir()) == []


def test_select_compares_one_configuration_of_a_folder_with_another_of_it(mixed_folder):
    header, *rows = comparison_rows(mixed_folder, [
        str(mixed_folder), str(mixed_folder), "--labels", "protocol", "clip 1.0",
        "--select", "clip_grad_norm=none", "clip_grad_norm=1.0"])
    assert header[-1] == "clip 1.0: difference"
    assert {row[1]: (row[2], row[4], row[-1]) for row in rows} == EXPECTED_CELLS
    text = (mixed_folder / "comparison.md").read_text()
    assert "--select clip_grad_norm=none clip_grad_norm=1.0" in text


def test_one_select_entry_picks_from_every_folder(mixed_folder, fake_settings):
    _, *rows = comparison_rows(mixed_folder, [str(fake_settings / "clip"), str(mixed_folder),
                                              "--select", "clip_grad_norm=1"])
    # each setting clips: test %, grad norm, clipped % apiece
    assert [row[2] for row in rows] == [row[5] for row in rows] == [
        EXPECTED_CELLS["70"][1], EXPECTED_CELLS["100"][1]]
    assert [row[-1] for row in rows] == ["no (p = 1)"] * 2


@pytest.mark.parametrize("select, message", [
    (["colour=red"], "error: --select colour: no run in {folder} has that option (its runs have "),
    (["clip_grad_norm=0.5"], "error: --select clip_grad_norm=0.5 picks none of the 20 runs in "),
    (["all"], "error: the runs in {folder} form 2 configurations"),
])
def test_a_select_that_does_not_pick_one_configuration_is_a_one_line_error(
        select, message, mixed_folder):
    with pytest.raises(SystemExit) as exit_info:
        compare_results.main([str(mixed_folder), "--select", *select,
                              "--output", str(mixed_folder)])
    assert exit_info.value.code.startswith(message.format(folder=mixed_folder))
    assert "\n" not in exit_info.value.code


@pytest.mark.parametrize("select, message", [
    (["clip_grad_norm"], "expected KEY=VALUE[,KEY=VALUE...] or 'all', got 'clip_grad_norm'"),
    (["all", "all", "all"], "2 folders but 3 --select entries"),
])
def test_a_malformed_select_is_an_argparse_error(select, message, mixed_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare_results.main([str(mixed_folder), str(mixed_folder), "--select", *select])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
