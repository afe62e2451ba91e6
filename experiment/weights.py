"""A run's final weights, kept beside its record: one .safetensors file per run.

A record is JSON, and the weights are tensors: they go into a file of their own,
<record key>.safetensors in the same runs/ folder, written atomically before the record that
names it. safetensors holds the tensors and nothing that runs when the file is read (unlike
a pickle). The record carries the file's name and SHA-256, so a file changed since, or
another run's, is refused instead of being loaded as this run's network. The trained network
itself comes back with experiment.networks.load_network.
"""
import hashlib
import os

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from lib.atomic_files import atomic_write

WEIGHTS = "weights"   # the key under which train_run(keep_weights=True) hands the weights over


class WeightsError(ValueError):
    """A weights file that is missing or is not the one its record names, in one line."""


def save_weights(runs_folder, key, record):
    """Move the record's weights (`record["weights"]`, {name: tensor}) into
    runs_folder/<key>.safetensors, written atomically, and name the file and its SHA-256 in the
    record ("weights_file", "weights_sha256"); returns the record, ready to be written as JSON.
    Call it before writing the record, so that a record on disk always finds its file."""
    tensors = record.pop(WEIGHTS)
    data = save_tensors({name: tensor.contiguous() for name, tensor in tensors.items()})
    name = key + ".safetensors"
    atomic_write(os.path.join(runs_folder, name), lambda f: f.write(data), binary=True)
    record["weights_file"] = name
    record["weights_sha256"] = hashlib.sha256(data).hexdigest()
    return record


def read_weights(record_path, record):
    """{name: tensor} of the file the record (read from `record_path`) names. Raises WeightsError
    where the record names no file (its run kept no weights), the file is missing, or its
    SHA-256 is not the record's."""
    if "weights_file" not in record:
        raise WeightsError(f"{record_path}: the record names no weights file (its run was "
                           "trained without keeping its weights)")
    path = os.path.join(os.path.dirname(record_path), record["weights_file"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file, and its record {record_path} names it") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != record["weights_sha256"]:
        raise WeightsError(f"{path}: SHA-256 {digest} is not the {record['weights_sha256']} its "
                           "record names (the file was changed, or is another run's)")
    return load_tensors(data)


def remove_weights(runs_folder, record):
    """Remove the weights file a record names, if it names one and it is there."""
    if "weights_file" in record:
        try:
            os.remove(os.path.join(runs_folder, record["weights_file"]))
        except FileNotFoundError:
            pass
