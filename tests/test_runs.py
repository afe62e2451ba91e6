"""Run records on disk: found by their configuration, whole or left out."""
import json

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
