"""Trained networks tested on other lengths: at their own length they give their record's test
accuracy, the fresh test sets come from a stream no data set uses, the tick split counts the
markers, and the command runs end to end (--quick, --report, its one-line errors)."""
import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import generate_data_adding_problem as data
from experiment import configs, runs, training
from studies import generalise, reach

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK_FILES = ["data", "generalise.csv", "generalise.md", "generalise.png", "retrained.csv", "runs"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(the folder --quick said it writes to, the folder it was run from, its printed output, the
    folder of temporary folders): run from an empty folder, so that a file written under a
    relative results/ or data/ would show there, with the temporary folders made in a folder
    of this test."""
    here, tempdir = os.getcwd(), tempfile.tempdir
    cwd, temporary = tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("tmp")
    printed = io.StringIO()
    os.chdir(cwd)
    tempfile.tempdir = str(temporary)
    try:
        with contextlib.redirect_stdout(printed):
            generalise.main(["--quick"])
    finally:
        os.chdir(here)
        tempfile.tempdir = tempdir
    text = printed.getvalue()
    folder = re.search(r"^--quick: the files go to (\S+), ", text, re.MULTILINE).group(1)
    return folder, cwd, text, str(temporary)


def quick_networks(quick):
    networks, unweighted = generalise.find_networks([quick[0]], threshold=0.0)
    assert networks and not unweighted
    return networks


def test_quick_writes_its_files_in_its_temporary_folder_and_nothing_in_the_repository(quick):
    folder, cwd, text, temporary = quick
    assert os.listdir(cwd) == []                         # no results/, no data/ where it ran
    assert os.path.dirname(folder) == temporary
    assert sorted(os.listdir(folder)) == QUICK_FILES
    assert "threshold lowered from 95 % to 0 %" in text
    rows = pd.read_csv(os.path.join(folder, "generalise.csv"))
    records = [name for name in os.listdir(os.path.join(folder, "runs")) if name.endswith(".json")]
    retrained = sum(len(lengths) for _, _, lengths in generalise.RETRAINED)
    assert len(records) == retrained == rows["record"].nunique()
    for name in records:                                 # train_grid kept every run's weights
        record = runs.read_record(os.path.join(folder, "runs", name))
        assert os.path.isfile(os.path.join(folder, "runs", record["weights_file"]))
    assert sorted(set(rows["ratio"])) == list(generalise.RATIOS)
    tenfold = rows[rows["ratio"] == 10]
    assert tenfold["state_max_at_10L"].notna().all()
    assert rows.loc[rows["ratio"] != 10, "state_max_at_10L"].isna().all()
    assert (tenfold["state_median_at_1L"] <= tenfold["state_max_at_1L"]).all()
    clocked = rows["model"].str.startswith("AlarmworkNet")
    assert rows.loc[clocked, "n_both"].notna().all() and rows.loc[~clocked, "n_both"].isna().all()


def test_a_network_at_its_own_length_gives_its_records_test_accuracy_exactly(quick):
    rows = pd.read_csv(os.path.join(quick[0], "generalise.csv"))
    own = rows[rows["ratio"] == 1]
    assert len(own) == rows["record"].nunique() and (own["tested_L"] == own["trained_L"]).all()
    assert (own["accuracy"] == own["record_test_accuracy"]).all()
    assert len(set(own["accuracy"])) > 1                 # the networks are told apart
    assert "7 of 7 networks give their record's test accuracy exactly." in quick[2]


@pytest.mark.parametrize("model, extra", [
    ("simple_rnn", {"nonlinearity": "relu"}), ("lstm", {}), ("alarmwork", {"wiring": "all"}),
    ("clockwork", {"periods": [1, 2, 4, 8], "engine": "bptt"})])
def test_the_outputs_read_from_the_states_are_the_forward_passes_bit_for_bit(model, extra):
    config = {"model": model, "hidden": 6, "engine": "bptt" if model == "alarmwork" else None,
              **extra}
    torch.manual_seed(3)
    network = training.make_model(config).eval()
    x, _ = generalise.fresh_test_set(21, samples=5)
    x = torch.from_numpy(x)
    y, norms = generalise.outputs_and_states(network, x, [1, 7, 21])
    with torch.no_grad():
        assert torch.equal(y, network(x))
    assert sorted(norms) == [1, 7, 21] and all(n.shape == (5,) for n in norms.values())
    assert len({float(n[0]) for n in norms.values()}) == 3


@pytest.mark.parametrize("steps", [(), (40,)])
def test_a_state_that_overflows_gives_non_finite_outputs_and_no_numpy_warning(steps):
    config = {"model": "alarmwork", "hidden": 6, "engine": "bptt", "wiring": "all",
              "nonlinearity": "relu"}
    network = training.make_model(config).eval()
    with torch.no_grad():
        for matrix in (network.W_rec1, network.W_rec2):
            matrix.copy_(10 * torch.eye(6))              # with every unit active, 20x a step
        for bias in (network.b_in1, network.b_in2):
            bias.fill_(1.0)                              # which the biases keep active
    x, _ = generalise.fresh_test_set(40, samples=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _, norms = generalise.run_network(network, x, batch=3, steps=steps)
    assert not torch.isfinite(y).any()
    assert all(not torch.isfinite(n).any() for n in norms.values())


def test_the_fresh_test_sets_are_the_same_each_call_and_differ_per_length():
    x_10, t_10 = generalise.fresh_test_set(10, samples=40)
    again_x, again_t = generalise.fresh_test_set(10, samples=40)
    assert np.array_equal(x_10, again_x) and np.array_equal(t_10, again_t)
    x_20, t_20 = generalise.fresh_test_set(20, samples=40)
    assert x_20.shape == (40, 20, 2) and not np.array_equal(t_10, t_20)
    assert not np.array_equal(x_10[:, :10, 0], x_20[:, :10, 0])
    arrays = {"x_test": x_20, "t_test": t_20, "x_dev": x_20, "t_dev": t_20, "x_train": x_20,
              "t_train": t_20}
    data.check_data_set("fresh", arrays, 20)             # the data's rules hold for it


@pytest.mark.parametrize("seq_len", [10, 20, 100])
def test_no_fresh_sample_is_a_sample_of_the_data_sets_splits(seq_len):
    x, _ = generalise.fresh_test_set(seq_len, samples=200)
    seen = set()
    for train in (200, 600):                # a split of the fresh set's size, and a longer one
        made = data.generate_data_set(seq_len, {"train": train, "dev": 200, "test": 200})
        seen |= {sample.tobytes() for split in data.SPLITS for sample in made[f"x_{split}"]}
    assert not any(sample.tobytes() in seen for sample in x)
    # the same check finds the samples of the data's own stream
    stream = np.random.default_rng([data.DEFAULT_SEED, seq_len])
    same_stream, _ = data.adding_problem(600, seq_len, stream)
    assert all(sample.tobytes() in seen for sample in same_stream)


def test_the_fresh_stream_is_fed_words_that_no_data_seed_and_length_give():
    child = np.random.SeedSequence([data.DEFAULT_SEED, 50]).spawn(2)[1]
    rule = np.random.SeedSequence([data.DEFAULT_SEED, 50], spawn_key=(generalise.FRESH_SPAWN_KEY,))
    words = np.random.SeedSequence([data.DEFAULT_SEED, 50, 0, 0, 1])
    assert np.array_equal(rule.generate_state(4), child.generate_state(4))
    assert np.array_equal(rule.generate_state(4), words.generate_state(4))
    # the data stream of the same seed and length, and one whose seed's words hold the length
    for seed, seq_len in [(data.DEFAULT_SEED, 50), (data.DEFAULT_SEED + (50 << 32), 2)]:
        assert not np.array_equal(np.random.SeedSequence([seed, seq_len]).generate_state(4),
                                  rule.generate_state(4))


def test_the_tick_split_counts_the_markers_on_the_slowest_layers_ticks(quick):
    alarmwork = next(n for n in quick_networks(quick) if n.record["config"]["model"] == "alarmwork")
    torch.manual_seed(0)
    clockwork = training.make_model({"model": "clockwork", "hidden": 6, "engine": "bptt",
                                     "periods": [1, 2, 4, 8]}).eval()
    x, t = generalise.fresh_test_set(37, samples=300)
    for model, period in ((alarmwork.model, 2), (clockwork, 8)):
        y, counts, _ = generalise.run_network(model, x, batch=64, period=period)
        row = generalise.measures(y, torch.from_numpy(t), counts)
        positions = [np.flatnonzero(sample[:, 1]) for sample in x]
        on = np.array([sum(int(m % period == 0) for m in marked) for marked in positions])
        assert all(len(marked) == 2 for marked in positions)
        counted = [int((on == k).sum()) for k in (2, 1, 0)]
        assert [row["n_both"], row["n_one"], row["n_none"]] == counted
        assert row["n_both"] + row["n_one"] + row["n_none"] == len(x)
        assert min(row["n_both"], row["n_one"], row["n_none"]) > 0
        hits = sum(row[f"accuracy_{w}"] * row[f"n_{w}"] for w in generalise.WHERE) / len(x)
        assert hits == pytest.approx(row["accuracy"])
        assert row["accuracy"] == training.evaluate(model, torch.from_numpy(x), torch.from_numpy(t))


def test_tested_lengths_round_half_down_and_skip_below_two():
    assert generalise.tested_lengths(101) == [(0.5, 50), (1, 101), (2, 202), (5, 505), (10, 1010)]
    assert generalise.tested_lengths(3) == [(1, 3), (2, 6), (5, 15), (10, 30)]


def test_the_retrained_runs_are_the_reach_ladders_runs():
    sizes = data.DEFAULT_SIZES
    options = {L: data.generator_options(L, sizes, data.DEFAULT_SEED) for L in (100, 200, 500)}
    todo = generalise.retrained_configs(options)
    assert len(todo) == len({runs.run_key(c) for c in todo}) == 7 * len(generalise.SEEDS)
    rungs = {}
    for config in todo:
        folder = os.path.join(ROOT, reach.RESULTS_DIR, configs.setting(config, "recipe"))
        record = runs.find_record(folder, config)
        assert record is not None, f"no ladder record of {runs.run_key(config)} in {folder}"
        rung = (config["model"], configs.setting(config, "wiring"), config["seq_len"])
        rungs.setdefault(rung, []).append(reach.accuracy_of(record))
    assert len(rungs) == 7 and all(reach.rung_reached(a) for a in rungs.values())


def test_report_rebuilds_the_markdown_and_figure_from_the_csv(quick, tmp_path, capsys):
    folder = tmp_path / "copy"
    shutil.copytree(quick[0], folder, ignore=shutil.ignore_patterns("runs", "data"))
    before = (folder / "generalise.md").read_text()
    (folder / "generalise.md").unlink()
    (folder / "generalise.png").unlink()
    generalise.main(["--quick", "--results-dir", str(folder), "--report"])
    after = (folder / "generalise.md").read_text()
    body = lambda text: text.split("\n", 3)[3]           # after the "Made by" line
    assert body(after) == body(before) and "AlarmworkNet all-wired [integrator]" in after
    assert f"`python -m studies.generalise --quick --results-dir {folder}`" in after
    assert (folder / "generalise.png").stat().st_size > 0
    assert sorted(os.listdir(folder)) == ["generalise.csv", "generalise.md", "generalise.png",
                                          "retrained.csv"]
    with pytest.raises(SystemExit, match=r"^error: .*generalise.csv: cannot be read .*--report"):
        generalise.main(["--results-dir", str(tmp_path / "empty"), "--report"])


def test_a_folder_without_solved_networks_and_a_missing_folder_end_in_one_line(quick, tmp_path,
                                                                                capsys):
    assert not any(generalise.is_solved(n.record) for n in quick_networks(quick))
    out = str(tmp_path / "out")
    with pytest.raises(SystemExit, match=r"^error: no network with kept weights and a test "
                                         r"accuracy of at least 95 % in [^\n]*$"):
        generalise.main(["--networks", quick[0], "--results-dir", out])
    missing = str(tmp_path / "nothing")
    with pytest.raises(SystemExit) as ended:
        generalise.main(["--networks", missing, "--results-dir", out])
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].endswith(f"error: --networks {missing}: no such folder")
    assert "Traceback" not in err and not os.path.exists(os.path.join(out, "runs"))


def test_records_without_weights_are_skipped_and_said(quick, tmp_path, capsys):
    source = os.path.join(quick[0], "runs")
    names = sorted(n for n in os.listdir(source) if n.startswith("lstm") and n.endswith(".json"))
    older = tmp_path / "older" / "runs"
    older.mkdir(parents=True)
    kept = json.load(open(os.path.join(source, names[0])))
    shutil.copy(os.path.join(source, names[0]), older)
    shutil.copy(os.path.join(source, kept["weights_file"]), older)
    record = json.load(open(os.path.join(source, names[1])))
    del record["weights_file"], record["weights_sha256"]   # a run saved before weights were kept
    (older / names[1]).write_text(json.dumps(record))
    out = tmp_path / "out"
    generalise.main(["--quick", "--networks", str(older.parent), "--results-dir", str(out)])
    printed = capsys.readouterr().out
    assert "skipped 1 record(s) that kept no weights (trained before the weights were kept), " \
           "0 of them solved" in printed
    rows = pd.read_csv(out / "generalise.csv")
    assert set(rows["record"]) == {str(older / names[0])}
    assert not (out / "runs").exists()                   # another folder's networks: no training


def test_a_run_trained_again_is_set_beside_its_ladder_record(tmp_path, monkeypatch):
    options = {L: data.generator_options(L, {"train": 60, "dev": 20, "test": 20}, 1234)
               for L in (4, 6)}
    todo = generalise.retrained_configs(options, epochs=1, lengths={100: 4, 200: 6, 500: 6},
                                        seeds=(0,))[:3]      # nn.LSTM at 4 and 6, SimpleRNN at 4
    monkeypatch.setattr(generalise, "REACH_DIR", str(tmp_path))

    def record(config, accuracy, epochs, cpu):
        return {"config": config, "status": "finished", "dev_accuracy": accuracy,
                "test_accuracy": accuracy, "epochs_run": epochs, "cpu": cpu,
                "torch_cpu_capability": "AVX2", "history": []}

    ladder = os.path.join(str(tmp_path), configs.setting(todo[0], "recipe"))
    runs.save_record(ladder, record(todo[0], 97.5, 12, "Intel Xeon"))
    runs.save_record(ladder, record(todo[1], 99.0, 8, "AMD EPYC"))
    again = [record(todo[0], 97.5, 12, "AMD EPYC"), record(todo[1], 98.0, 9, "AMD EPYC"),
             record(todo[2], 96.0, 5, "AMD EPYC")]
    rows = generalise.reproduction_rows(todo, again)
    assert list(rows["same"]) == [True, False, False]
    assert rows["ladder_test_accuracy"].isna().tolist() == [False, False, True]
    text = generalise.reproduction_text(rows)
    assert "1 of 2 give the record's test accuracy after the record's epochs" in text
    assert ("Trained again on AMD EPYC, AVX2 (torch's capability included): of the runs whose "
            "record was made on the same kind, 0 of 1 match; of those made on another kind, "
            "1 of 1.") in text
