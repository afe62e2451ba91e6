"""A run's final weights beside its record: saved as safetensors, named with their SHA-256,
loaded back into the network that gives the record's test accuracy."""
import json
import os

import pytest
import torch

import generate_data_adding_problem as data
from experiment import networks, runs, training, weights
from lib.atomic_files import atomic_write_text


def tiny_config(**changes):
    return {"model": "lstm", "seq_len": 7, "seed": 0, "epochs": 2, "batch_size": 20, "hidden": 8,
            "engine": None, "optimizer": "adam", "lr": 0.03, "momentum": None,
            "clip_grad_norm": None, "shuffle": False, "device": "cpu", "data": {}, **changes}


def saved_run(tiny_data, results_dir, config):
    """Train the run keeping its weights, save them and then its record; returns
    (the record's path, the record, the weights as trained, the run's data)."""
    arrays = data.load_data_set(tiny_data, config["seq_len"])
    record = training.train_run(config, arrays, show_progress=False, keep_weights=True)
    trained = {name: tensor.clone() for name, tensor in record["weights"].items()}
    runs.save_record(str(results_dir), record)
    path = runs.record_path(str(results_dir), config)
    return path, runs.read_record(path), trained, arrays


@pytest.mark.parametrize("config", [tiny_config(),
                                    tiny_config(model="alarmwork", seq_len=4, engine="bptt")])
def test_the_loaded_network_gives_the_records_test_accuracy_exactly(tiny_data, tmp_path, config):
    path, record, trained, arrays = saved_run(tiny_data, tmp_path, config)
    assert "weights" not in record
    assert record["weights_file"] == os.path.basename(path)[:-len(".json")] + ".safetensors"
    assert os.path.exists(tmp_path / "runs" / record["weights_file"])
    model = networks.load_network(path)
    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[name], trained[name]) for name in trained)
    x, t = torch.from_numpy(arrays["x_test"]), torch.from_numpy(arrays["t_test"])
    assert training.evaluate(model, x, t) == record["test_accuracy"]
    torch.manual_seed(0)
    untrained = training.make_model(record["config"])
    assert training.evaluate(untrained, x, t) != record["test_accuracy"]


def test_a_weights_file_changed_since_its_record_is_refused(tiny_data, tmp_path):
    path, record, _, _ = saved_run(tiny_data, tmp_path, tiny_config(epochs=1))
    file = tmp_path / "runs" / record["weights_file"]
    content = bytearray(file.read_bytes())
    content[-1] ^= 1                            # one bit of the last weight
    file.write_bytes(bytes(content))
    with pytest.raises(weights.WeightsError, match="SHA-256 .* is not the .* its record names"):
        networks.load_network(path)
    file.unlink()
    with pytest.raises(weights.WeightsError, match="no such file"):
        networks.load_network(path)


def test_runs_keep_no_weights_unless_asked_and_such_records_say_they_have_none(tiny_data,
                                                                                tmp_path):
    config = tiny_config(epochs=1)
    record = training.train_run(config, data.load_data_set(tiny_data, 7), show_progress=False)
    assert "weights" not in record
    path = runs.record_path(str(tmp_path), config)
    atomic_write_text(path, json.dumps(record))
    with pytest.raises(weights.WeightsError, match="names no weights file"):
        networks.load_network(path)
