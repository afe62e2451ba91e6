"""Trained networks back from their records, to test them on other data:

    from experiment.networks import load_network
    model = load_network("results/reach/integrator/runs/lstm_L100_seed0_0123456789.json")
    y = model(x)      # x: (batch, L, 2) float32; the trained network, in eval mode, on the CPU

The configuration in the record builds the model (training.make_model); the weights kept
beside the record (experiment/weights.py) then replace every tensor of it, so on the record's
own test set the network gives the record's test accuracy.
"""
import torch

from experiment import runs, training, weights


def load_network(record_path, device="cpu"):
    """The trained network of the record in `record_path`, in eval mode on `device`. Raises
    weights.WeightsError where its run kept no weights, or the file is missing or changed."""
    record = runs.read_record(record_path)
    tensors = weights.read_weights(record_path, record)
    with torch.random.fork_rng(devices=[]):    # the start drawn here is overwritten: leave
        model = training.make_model(record["config"])   # the caller's random numbers alone
    model.load_state_dict(tensors)
    return model.to(device).eval()
