"""Run records on disk: found by their configuration, whole or left out; a file another command
on the folder removed meanwhile is no error."""
import json
import os

import pytest

from experiment import configs, recipes, runs


def config(seed=0):
    return configs.run_config("lstm", 4, seed, None)


def save(results_dir, seed=0, status="finished"):
    record = {"config": config(seed), "status": status, "history": []}
    runs.save_record(str(results_dir), record)
    return runs.record_path(str(results_dir), record["config"])


def test_a_saved_record_is_found_by_its_configuration_and_not_by_another(tmp_path):
    path = save(tmp_path)
    assert runs.load_record(path, config())["config"] == config()
    assert runs.load_record(runs.record_path(str(tmp_path), config(1)), config(1)) is None


def test_load_records_reads_every_whole_record_and_names_each_one_it_leaves_out(tmp_path, capsys):
    save(tmp_path, 0)
    save(tmp_path, 1)
    truncated = save(tmp_path, 2)
    with open(truncated, "w") as f:
        f.write('{"config": {"mod')
    renamed = save(tmp_path, 3)
    with open(renamed) as f:
        record = json.load(f)
    record["config"]["lr"] = 0.5                   # no longer the configuration of its name
    with open(renamed, "w") as f:
        json.dump(record, f)
    save(tmp_path, 4, status="running")
    (tmp_path / "runs" / ".tmp-being-written.json").write_text("{")
    (tmp_path / "runs" / "notes.txt").write_text("not a record")
    assert [r["config"]["seed"] for r in runs.load_records(str(tmp_path))] == [0, 1]
    warnings = capsys.readouterr()
    text = warnings.out + warnings.err
    assert text.count("is corrupt") == 3 and "left out" in text
    assert "does not match its name" in text and "unknown status 'running'" in text


def test_load_records_of_a_folder_without_runs_is_empty(tmp_path):
    assert runs.load_records(str(tmp_path / "nothing")) == []


def test_saving_a_record_removes_the_runs_checkpoint_and_only_that(tmp_path):
    (tmp_path / "runs").mkdir()
    own, other = runs.checkpoint_path(str(tmp_path), config(0)), runs.checkpoint_path(str(tmp_path), config(1))
    for path in (own, other):
        with open(path, "wb") as f:
            f.write(b"state")
    save(tmp_path, 0)
    assert not (tmp_path / "runs" / own.split("/")[-1]).exists()
    assert (tmp_path / "runs" / other.split("/")[-1]).exists()
    assert [r["config"]["seed"] for r in runs.load_records(str(tmp_path))] == [0]   # .ckpt is no record


def test_a_record_named_before_a_recipe_was_added_is_still_read_and_found(tmp_path, monkeypatch):
    # an LSTM run of the modern recipe at another rate: it follows no recipe, so it keeps
    # the name modern; a recipe added later with exactly its settings renames the run
    saved = configs.run_config("lstm", 4, 0, None, recipe="modern", lr=1e-4)
    runs.save_record(str(tmp_path), {"config": saved, "status": "finished", "history": []})
    old_key = runs.run_key(saved)
    monkeypatch.setitem(recipes.RECIPES, "modern_slow",
                        {**recipes.RECIPES["modern"], "lr": {"lstm": 1e-4}})
    renamed = configs.run_config("lstm", 4, 0, None, recipe="modern_slow")
    assert renamed["recipe"] == "modern_slow" and runs.run_key(renamed) != old_key
    [record] = runs.load_records(str(tmp_path))
    assert record["config"] == renamed == configs.normalize(saved)
    assert runs.find_record(str(tmp_path), renamed)["config"] == renamed
    assert runs.find_record(str(tmp_path), configs.run_config("lstm", 4, 1, None, recipe="modern_slow")) is None


def test_a_record_renamed_by_a_recipe_added_since_moves_to_its_new_key_with_its_weights(
        tmp_path, monkeypatch):
    import torch
    from experiment import weights
    saved = configs.run_config("lstm", 4, 0, None, recipe="modern", lr=1e-4)
    tensors = {"w": torch.arange(6.0).reshape(2, 3)}
    runs.save_record(str(tmp_path), {"config": saved, "status": "finished", "test_accuracy": 97.0,
                                     "history": [{"epoch": 0}], weights.WEIGHTS: dict(tensors)})
    old_path = runs.record_path(str(tmp_path), saved)
    assert runs.rename_to_todays_key(old_path) == old_path            # nothing renames it yet
    add_modern_slow(monkeypatch)
    new_path = runs.rename_to_todays_key(old_path)
    renamed = configs.run_config("lstm", 4, 0, None, recipe="modern_slow")
    assert new_path == runs.record_path(str(tmp_path), renamed) != old_path
    assert files(tmp_path, ".json") == [os.path.basename(new_path)]
    assert files(tmp_path, ".safetensors") == [runs.run_key(renamed) + ".safetensors"]
    with open(new_path) as f:
        raw = json.load(f)
    assert raw["config"] == renamed and raw["test_accuracy"] == 97.0 and raw["history"] == [{"epoch": 0}]
    loaded = weights.read_weights(new_path, raw)                      # its SHA-256 checked
    assert torch.equal(loaded["w"], tensors["w"])
    assert runs.rename_to_todays_key(new_path) == new_path


# ------------------------------------------------------------------------------ a record renamed by a recipe added since
# An LSTM run of the modern recipe at another rate follows no recipe, so it is named modern;
# the recipe modern_slow, added later with exactly its settings, renames it. Every path that
# meets the run must then treat the file under the former name as this run's.

RENAMED_ARGV = ["--models", "lstm", "--lengths", "4", "--recipe", "modern", "--lr", "1e-4",
                "--train", "60", "--dev", "20", "--test", "20", "--epochs", "6", "--jobs", "1"]


def add_modern_slow(monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "modern_slow",
                        {**recipes.RECIPES["modern"], "lr": {"lstm": 1e-4}})


def files(results_dir, suffix):
    return sorted(p.name for p in (results_dir / "runs").iterdir() if p.name.endswith(suffix))


def test_force_replaces_a_record_saved_under_a_former_name(tiny_data, tmp_path, monkeypatch):
    import train_rnn
    argv = RENAMED_ARGV + ["--data-dir", tiny_data, "--results-dir", str(tmp_path)]
    train_rnn.main(argv)
    [former] = files(tmp_path, ".json")
    add_modern_slow(monkeypatch)
    train_rnn.main(argv + ["--force"])
    [name] = files(tmp_path, ".json")                       # one run, one record
    assert name != former and name.startswith("lstm_L004_seed0_")
    [record] = runs.load_records(str(tmp_path))
    assert record["config"]["recipe"] == "modern_slow"


def test_compare_results_reads_a_record_saved_under_a_former_name(tiny_data, tmp_path, monkeypatch):
    import train_rnn
    from studies import compare_results
    argv = RENAMED_ARGV + ["--data-dir", tiny_data, "--results-dir", str(tmp_path)]
    train_rnn.main(argv)
    add_modern_slow(monkeypatch)
    train_rnn.main(["--report", "--results-dir", str(tmp_path)])   # accuracy.csv names today's key
    loaded = compare_results.load_runs(str(tmp_path))
    [record] = runs.load_records(str(tmp_path))
    assert list(loaded["run"]) == [runs.run_key(record["config"])]
    assert loaded["history"][0] == record["history"]


def test_a_checkpoint_saved_under_a_former_name_is_resumed(tiny_data, tmp_path, monkeypatch):
    import train_rnn
    from experiment import training

    class Stop(KeyboardInterrupt):
        pass

    def argv(folder):
        return RENAMED_ARGV + ["--data-dir", tiny_data, "--results-dir", str(tmp_path / folder)]

    real_save, real_load = training.save_checkpoint, training.load_checkpoint

    def save_then_stop(path, state):
        real_save(path, state)
        if state["epochs_run"] == 3:
            raise Stop()

    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(SystemExit, match="interrupted"):
        train_rnn.main(argv("stopped"))
    [former] = files(tmp_path / "stopped", ".ckpt")

    add_modern_slow(monkeypatch)
    resumed_from = []

    def load(path, config):
        state = real_load(path, config)
        resumed_from.append(None if state is None else state["epochs_run"])
        return state

    monkeypatch.setattr(training, "save_checkpoint", real_save)
    monkeypatch.setattr(training, "load_checkpoint", load)
    train_rnn.main(argv("stopped"))
    assert resumed_from == [3]                                   # not from epoch 0
    assert files(tmp_path / "stopped", ".ckpt") == []            # nothing orphaned
    train_rnn.main(argv("whole"))                                # the same run, never stopped
    [stopped], [whole] = runs.load_records(str(tmp_path / "stopped")), runs.load_records(str(tmp_path / "whole"))
    assert stopped["history"] == whole["history"] and stopped["config"] == whole["config"]
    assert stopped["test_accuracy"] == whole["test_accuracy"]
    assert former not in files(tmp_path / "stopped", ".json")


# ------------------------------------------------------------------------------ two commands on one folder
# A file another command removes or moves between our listing and our own removal is no error.

def removed_by_another_command_once_listed(monkeypatch, act):
    """Make runs.checkpoints_of_run list the files, then `act(path, config)` on each, as another
    command would in between."""
    real = runs.checkpoints_of_run

    def listed(results_dir, config):
        found = real(results_dir, config)
        for path in found:
            act(path, runs.checkpoint_path(results_dir, config))
        return found

    monkeypatch.setattr(runs, "checkpoints_of_run", listed)


def test_a_checkpoint_removed_meanwhile_by_another_command_is_no_error(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    path = runs.checkpoint_path(str(tmp_path), config())
    with open(path, "wb") as f:
        f.write(b"state")
    removed_by_another_command_once_listed(monkeypatch, lambda found, own: os.remove(found))
    runs.discard_checkpoint(str(tmp_path), config())
    with open(path, "wb") as f:
        f.write(b"state")
    save(tmp_path)                                 # saving a record discards the checkpoint too
    assert files(tmp_path, ".ckpt") == [] and len(files(tmp_path, ".json")) == 1


def test_a_former_checkpoint_moved_meanwhile_by_another_command_is_resumed(tmp_path, monkeypatch):
    saved = configs.run_config("lstm", 4, 0, None, recipe="modern", lr=1e-4)
    (tmp_path / "runs").mkdir()
    with open(runs.checkpoint_path(str(tmp_path), saved), "wb") as f:
        f.write(b"state")
    add_modern_slow(monkeypatch)
    renamed = configs.normalize(saved)
    removed_by_another_command_once_listed(monkeypatch, os.replace)
    path = runs.resumable_checkpoint(str(tmp_path), renamed)
    assert path == runs.checkpoint_path(str(tmp_path), renamed)
    with open(path, "rb") as f:
        assert f.read() == b"state"


def test_a_record_under_a_former_name_removed_meanwhile_by_another_command_is_no_error(
        tmp_path, monkeypatch):
    saved = configs.run_config("lstm", 4, 0, None, recipe="modern", lr=1e-4)
    runs.save_record(str(tmp_path), {"config": saved, "status": "finished", "history": []})
    add_modern_slow(monkeypatch)
    renamed = configs.normalize(saved)
    real = runs.records_under_other_names

    def listed(results_dir, config):
        found = list(real(results_dir, config))
        for path, _ in found:
            os.remove(path)
        return iter(found)

    monkeypatch.setattr(runs, "records_under_other_names", listed)
    runs.save_record(str(tmp_path), {"config": renamed, "status": "finished", "history": []})
    assert files(tmp_path, ".json") == [runs.run_key(renamed) + ".json"]
