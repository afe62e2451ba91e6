"""The protocol-vs-variant comparison table and figure."""
import pytest

import compare_results
import train_rnn


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
