"""The data rules of SPEC.md, section "1. The adding problem", determinism, and the loader's checks."""
import os
import subprocess
import sys

import numpy as np
import pytest

import generate_data_adding_problem as data
import train_rnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {"train": 300, "dev": 50, "test": 40}


@pytest.mark.parametrize("seq_len", [2, 3, 10, 51])
def test_samples_follow_the_data_rules(seq_len):
    x, t = data.adding_problem(500, seq_len, np.random.default_rng(0))
    assert x.shape == (500, seq_len, 2) and x.dtype == np.float32
    assert t.shape == (500,) and t.dtype == np.float32
    values, markers = x[..., 0].astype(np.float64), x[..., 1]
    assert np.abs(values).max() <= 0.25
    assert np.allclose(values, np.round(values, 2), atol=1e-6)   # two decimals
    half = seq_len // 2
    assert (markers[:, :half].sum(axis=1) == 1).all()
    assert (markers[:, half:].sum(axis=1) == 1).all()
    assert set(np.unique(markers)) <= {0.0, 1.0}
    expected = np.round((values * markers).sum(axis=1), 2)
    assert np.allclose(t, expected, atol=1e-6)


def test_marker_positions_cover_both_halves_uniformly():
    seq_len, half = 10, 5
    x, _ = data.adding_problem(20_000, seq_len, np.random.default_rng(1))
    positions = np.argwhere(x[..., 1] == 1)[:, 1].reshape(-1, 2)
    first, second = np.bincount(positions[:, 0], minlength=seq_len), np.bincount(positions[:, 1], minlength=seq_len)
    assert (first[:half] > 3500).all() and (first[half:] == 0).all()
    assert (second[half:] > 3500).all() and (second[:half] == 0).all()


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    a = data.generate_data_set(10, SIZES, seed=5)
    b = data.generate_data_set(10, SIZES, seed=5)
    c = data.generate_data_set(10, SIZES, seed=6)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["x_train"], c["x_train"])


def test_generating_another_length_never_changes_an_existing_one(tmp_path):
    data.main(["--lengths", "10", "--train", "30", "--dev", "5", "--test", "5", "--data-dir", str(tmp_path / "a")])
    data.main(["--lengths", "50", "10", "--train", "30", "--dev", "5", "--test", "5", "--data-dir", str(tmp_path / "b")])
    alone = data.load_data_set(str(tmp_path / "a"), 10)
    together = data.load_data_set(str(tmp_path / "b"), 10)
    for key in alone:
        np.testing.assert_array_equal(alone[key], together[key])


def test_archive_has_the_contracted_names_shapes_and_dtypes(tmp_path):
    path, outcome = data.write_data_set(str(tmp_path), 7, SIZES, seed=3)
    assert outcome == "written" and path.endswith("adding_problem_L007.npz")
    arrays = data.load_data_set(str(tmp_path), 7, data.generator_options(7, SIZES, 3))
    for split in data.SPLITS:
        assert arrays[f"x_{split}"].shape == (SIZES[split], 7, 2)
        assert arrays[f"t_{split}"].shape == (SIZES[split],)
        assert arrays[f"x_{split}"].dtype == arrays[f"t_{split}"].dtype == np.float32


@pytest.mark.parametrize("argv", [["--lengths", "1"], ["--train", "0"], ["--dev", "-3"],
                                  ["--seed", "1.5"], ["--lengths", "ten"]])
def test_bad_command_line_values_are_argparse_errors(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        data.main(argv + ["--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script, flag", [("generate_data_adding_problem.py", "--seed"),
                                          ("generate_data_adding_problem.py", "--data-seed"),
                                          ("train_rnn.py", "--data-seed")])
def test_a_negative_data_seed_is_a_one_line_argparse_error(script, flag, tmp_path):
    process = subprocess.run([sys.executable, os.path.join(ROOT, script), flag, "-1",
                              "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and process.stdout == ""
    errors = [line for line in process.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].endswith("--data-seed: must be at least 0, got -1")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ the loader's checks

def write_broken(tmp_path, seq_len, change):
    """A valid data set of `seq_len` passed through `change(arrays)`, saved as that length's file."""
    arrays = data.generate_data_set(seq_len, SIZES, seed=0)
    change(arrays)
    np.savez(data.data_path(str(tmp_path), seq_len), **arrays)


def set_item(key, index, value):
    def change(arrays):
        arrays[key][index] = value
    return change


def add_a_third_marker(arrays):
    markers = arrays["x_train"][7, :5, 1]
    markers[np.flatnonzero(markers == 0)[0]] = 1.0


def move_first_marker_to_second_half(arrays):
    x = arrays["x_dev"]
    x[4, :, 1] = 0.0
    x[4, 6, 1] = x[4, 8, 1] = 1.0
    arrays["t_dev"][4] = np.round(x[4, 6, 0] + x[4, 8, 0], 2)


BROKEN = {
    "missing key": (lambda a: a.pop("t_test"), "missing array 't_test'"),
    "wrong dtype": (lambda a: a.update(x_train=a["x_train"].astype(np.float64)), "'x_train' has dtype float64"),
    "wrong shape": (lambda a: a.update(x_dev=a["x_dev"][..., :1]), "'x_dev' has shape (50, 10, 1)"),
    "wrong target shape": (lambda a: a.update(t_train=a["t_train"][:-1]), "'t_train' has shape (299,)"),
    "NaN value": (set_item("x_test", (3, 2, 0), np.nan), "split 'test' holds NaN or infinite values"),
    "infinite value": (set_item("t_train", 0, np.inf), "split 'train' holds NaN or infinite values"),
    "third marker": (add_a_third_marker, "split 'train' sample 7 has 2 marker(s) in steps 0..4 and 1 in 5..9"),
    "no marker": (set_item("x_dev", (2, slice(None), 1), 0.0), "split 'dev' sample 2 has 0 marker(s)"),
    "marker outside its half": (move_first_marker_to_second_half, "split 'dev' sample 4 has 0 marker(s) in steps 0..4 and 2 in 5..9"),
    "target does not match": (set_item("t_test", 9, 0.5), "split 'test' sample 9 has target 0.5000"),
    "value out of range": (set_item("x_train", (1, 1, 0), 0.75), "values outside [-0.25, 0.25]"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_loader_rejects_broken_data_naming_file_and_problem(case, tmp_path):
    change, message = BROKEN[case]
    write_broken(tmp_path, 10, change)
    with pytest.raises(data.DataError) as error:
        data.load_data_set(str(tmp_path), 10)
    assert str(error.value).startswith(data.data_path(str(tmp_path), 10) + ": ")
    assert message in str(error.value)
    # training refuses the same file with the same one line, before writing any result
    results = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--lengths", "10", "--train", "300", "--dev", "50", "--test", "40",
                        "--data-seed", "0", "--data-dir", str(tmp_path), "--results-dir", str(results)])
    assert exit_info.value.code == f"error: {error.value}"
    assert not results.exists()


def test_loader_rejects_a_length_that_differs_from_the_file_name(tmp_path):
    arrays = data.generate_data_set(12, SIZES, seed=0)
    np.savez(data.data_path(str(tmp_path), 10), **arrays)
    with pytest.raises(data.DataError, match="sequences of length 12, but the file name says L = 10"):
        data.load_data_set(str(tmp_path), 10)


@pytest.mark.parametrize("content", [b"", b"not a numpy archive at all", "truncated"])
def test_loader_rejects_unreadable_files(content, tmp_path):
    path = data.data_path(str(tmp_path), 10)
    if content == "truncated":
        data.write_data_set(str(tmp_path), 10, SIZES, seed=0)
        with open(path, "rb") as f:
            content = f.read()[: 2000]
    with open(path, "wb") as f:
        f.write(content)
    with pytest.raises(data.DataError, match="not a readable NumPy archive"):
        data.load_data_set(str(tmp_path), 10)


def test_loader_says_how_to_create_a_missing_file(tmp_path):
    with pytest.raises(data.DataError, match="generate_data_adding_problem.py --lengths 70"):
        data.load_data_set(str(tmp_path), 70)


def test_data_made_with_other_options_is_detected_and_not_overwritten(tmp_path, capsys):
    data.write_data_set(str(tmp_path), 10, SIZES, seed=1)
    before = data.load_data_set(str(tmp_path), 10)
    with pytest.raises(data.DataError, match="made with other options"):
        data.load_data_set(str(tmp_path), 10, data.generator_options(10, SIZES, 2))
    with pytest.raises(SystemExit) as exit_info:
        data.main(["--lengths", "10", "--seed", "2", "--train", "300", "--dev", "50", "--test", "40",
                   "--data-dir", str(tmp_path)])
    assert "use --force" in str(exit_info.value.code)
    np.testing.assert_array_equal(data.load_data_set(str(tmp_path), 10)["x_train"], before["x_train"])
    data.main(["--lengths", "10", "--seed", "2", "--train", "300", "--dev", "50", "--test", "40",
               "--data-dir", str(tmp_path), "--force"])
    assert data.read_options(data.data_path(str(tmp_path), 10))["seed"] == 2
