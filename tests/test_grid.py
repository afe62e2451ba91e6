"""The pool of workers: a worker killed mid-run stops the command with the runs named, nothing
finished is lost, and the same command finishes the grid; a run resumes from its checkpoint."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import generate_data_adding_problem as data
import train_rnn
from experiment import configs, grid, runs, training
from studies import reach

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory):
    """A length whose runs take some seconds each: long enough to be killed part-way."""
    folder = tmp_path_factory.mktemp("slow_data")
    data.write_data_set(str(folder), 20, {"train": 600, "dev": 50, "test": 50}, seed=0)
    return str(folder)


def worker_pids(parent):
    """The pool's worker processes of `parent` (not multiprocessing's resource tracker)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(name))
    return pids


def saved(results_dir):
    runs = os.path.join(results_dir, "runs")
    return sorted(n for n in os.listdir(runs) if n.endswith(".json")) if os.path.isdir(runs) else []


def kill_one_worker_part_way(argv, runs_dir):
    """Start the command, kill one worker once a run has checkpointed, and return
    (the finished process, seconds from the kill to its end, the records saved then)."""
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            workers = worker_pids(process.pid)
            if len(workers) == 2 and os.path.isdir(runs_dir) and any(
                    n.endswith(".ckpt") for n in os.listdir(runs_dir)):
                break
            time.sleep(0.05)
        assert process.poll() is None, "the command ended before a worker could be killed"
        os.kill(workers[0], signal.SIGKILL)
        killed = time.monotonic()
        out, err = process.communicate(timeout=60)
        return process, time.monotonic() - killed, out + err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_killed_worker_stops_the_grid_naming_its_runs_and_the_same_command_finishes_it(
        slow_data, tmp_path, capsys):
    argv = ["--models", "lstm", "--lengths", "20", "--seeds", "3", "--epochs", "8",
            "--data-dir", slow_data, "--results-dir", str(tmp_path), "--jobs", "2"]
    process, seconds, output = kill_one_worker_part_way([sys.executable, "train_rnn.py", *argv],
                                                        str(tmp_path / "runs"))
    assert process.returncode != 0
    assert seconds < 30
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: a worker process died") and "LSTM L=20 seed=" in last
    assert "Traceback" not in output
    before = saved(tmp_path)
    train_rnn.main(argv)                                  # the same command, in this process
    after = saved(tmp_path)
    assert len(after) == 3 and set(before) <= set(after)
    if before:
        assert f"skipping {len(before)} finished run(s)" in capsys.readouterr().out


def test_workers_whose_command_is_killed_end_after_their_epoch_and_the_command_goes_on(
        slow_data, tmp_path):
    argv = ["--models", "lstm", "--lengths", "20", "--seeds", "2", "--epochs", "30",
            "--data-dir", slow_data, "--results-dir", str(tmp_path), "--jobs", "2"]
    runs_dir = str(tmp_path / "runs")
    process = subprocess.Popen([sys.executable, "train_rnn.py", *argv], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            workers = worker_pids(process.pid)
            if len(workers) == 2 and os.path.isdir(runs_dir) and sum(
                    n.endswith(".ckpt") for n in os.listdir(runs_dir)) == 2:
                break
            time.sleep(0.05)
        assert process.poll() is None and len(workers) == 2, "the runs ended before the kill"
        process.kill()                   # SIGKILL: the command cannot stop its pool itself
        process.wait()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") and
                                                  open(f"/proc/{pid}/stat").read().split()[2] != "Z"
                                                  for pid in workers):
            time.sleep(0.1)
        alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}")
                 and open(f"/proc/{pid}/stat").read().split()[2] != "Z"]
        assert not alive, "a worker trained on after its command was killed"
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert saved(tmp_path) == []             # 30 epochs: neither run ended before the kill
    train_rnn.main(argv)                     # the same command, in this process
    assert len(saved(tmp_path)) == 2


def test_a_killed_worker_stops_the_reach_study_and_the_same_command_finishes_it(slow_data, tmp_path):
    argv = ["--models", "lstm", "--recipes", "assignment", "--lengths", "20", "--seeds", "3",
            "--epochs", "8", "--train", "600", "--dev", "50", "--test", "50",
            "--data-dir", slow_data, "--results-dir", str(tmp_path), "--jobs", "2"]
    runs = tmp_path / "assignment"
    process, seconds, output = kill_one_worker_part_way(
        [sys.executable, "-m", "studies.reach", *argv], str(runs / "runs"))
    assert process.returncode != 0 and seconds < 30
    last = output.strip().splitlines()[-1]
    assert last.startswith("error: a worker process died") and "LSTM L=20 seed=" in last
    before = saved(runs)
    reach.main(argv)                                      # the same command, in this process
    assert len(saved(runs)) == 3 and set(before) <= set(saved(runs))


def ignores_sigint(pid):
    """Whether the process ignores SIGINT, from the SigIgn mask in /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        mask = next(line for line in f if line.startswith("SigIgn:")).split()[1]
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_while_the_workers_still_import_prints_one_line_and_no_worker_traceback(
        slow_data, tmp_path):
    # a terminal's Ctrl-C goes to every process of the foreground group: the workers too, which
    # spend their first second importing torch, before init_worker runs. Each must ignore it from
    # its start (a KeyboardInterrupt there printed a traceback, e.g. 0.1 s in, from site.py)
    argv = [sys.executable, "train_rnn.py", "--models", "lstm", "--lengths", "20", "--seeds", "2",
            "--epochs", "8", "--data-dir", slow_data, "--results-dir", str(tmp_path), "--jobs", "2"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (workers := worker_pids(process.pid)):
            time.sleep(0.002)
        assert workers, "the pool did not start"
        assert all(ignores_sigint(pid) for pid in workers)     # at once, not after the imports
        time.sleep(0.1)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted: 0 of 2 run(s) are saved")


def test_repeated_values_train_one_run_each(tiny_data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_rnn.parse_args(["--models", "lstm", "lstm"])
    assert "--models: each one once, got lstm lstm" in capsys.readouterr().err
    config = {"model": "lstm", "seq_len": 4, "seed": 0, "epochs": 1, "batch_size": 20, "hidden": 4,
              "lr": 0.01, "momentum": 0.9, "engine": None, "clip_grad_norm": None,
              "shuffle": False, "device": "cpu", "data": None}
    assert grid.unique([config, dict(config), dict(config, seed=1)]) == [config, dict(config, seed=1)]


def test_a_run_that_fails_ends_the_command_in_one_line_naming_it(tiny_data, tmp_path, monkeypatch):
    def broken(config, arrays, **options):
        raise ValueError("the weights went somewhere\nsecond line")

    monkeypatch.setattr(training, "train_run", broken)
    with pytest.raises(SystemExit) as exit_info:
        train_rnn.main(["--models", "lstm", "--lengths", "4", "--epochs", "1", "--data-dir", tiny_data,
                        "--results-dir", str(tmp_path), "--jobs", "1"])
    message = str(exit_info.value.code)
    assert message.startswith("error: LSTM L=4 seed=0 failed: ValueError: the weights went somewhere;")
    assert "\n" not in message


def test_needed_sees_the_records_another_command_saves_while_the_grid_runs(tiny_data, tmp_path):
    """A sweep run by two commands at once: each decides on the other's records too, and a run
    the other command saved is taken, not trained again."""
    options = {"seq_len": 4, "seed": 2021, "n_train": 60, "n_dev": 20, "n_test": 20}
    first, second, third = (configs.run_config("lstm", 4, seed, options, "modern", epochs=1,
                                               hidden=4) for seed in range(3))
    arrays = data.load_data_set(tiny_data, 4, options)
    seen, others = [], []

    def needed(config, records):
        if config["seed"] == 0:                        # meanwhile another command saves seed 2
            runs.save_record(str(tmp_path), training.train_run(third, arrays, show_progress=False))
            others.append(runs.find_record(str(tmp_path), third))
        seen.append((config["seed"], sorted(record["config"]["seed"] for record in records.values())))
        return True

    records, _ = grid.train_grid([first, second, third], tiny_data, str(tmp_path), 1, needed=needed)
    assert seen == [(0, []), (1, [0, 2]), (2, [0, 1])]   # asked of seed 2, without its own record
    assert [r["config"]["seed"] for r in records] == [0, 1, 2] and records[2] == others[0]


# ------------------------------------------------------------------------------ resuming a rung

class Stop(KeyboardInterrupt):
    """Ctrl-C, pressed by the test right after a checkpoint is written."""


def test_a_reach_run_stopped_part_way_resumes_from_its_checkpoint_to_the_same_record(
        tiny_data, tmp_path, monkeypatch):
    argv = ["--models", "lstm", "--recipes", "assignment", "--lengths", "4", "--seeds", "1",
            "--epochs", "6", "--train", "60", "--dev", "20", "--test", "20", "--data-dir", tiny_data,
            "--jobs", "1"]
    reach.main(argv + ["--results-dir", str(tmp_path / "whole")])
    (whole,) = saved(tmp_path / "whole" / "assignment")

    real_save, real_load = training.save_checkpoint, training.load_checkpoint

    def save_then_stop(path, state):
        real_save(path, state)
        if state["epochs_run"] == 3:
            raise Stop()

    monkeypatch.setattr(training, "save_checkpoint", save_then_stop)
    with pytest.raises(SystemExit, match="interrupted"):
        reach.main(argv + ["--results-dir", str(tmp_path / "stopped")])
    assert saved(tmp_path / "stopped" / "assignment") == []

    resumed_from = []

    def load(path, config):
        state = real_load(path, config)
        resumed_from.append(None if state is None else state["epochs_run"])
        return state

    monkeypatch.setattr(training, "save_checkpoint", real_save)
    monkeypatch.setattr(training, "load_checkpoint", load)
    reach.main(argv + ["--results-dir", str(tmp_path / "stopped")])
    assert resumed_from == [3]
    (name,) = saved(tmp_path / "stopped" / "assignment")
    assert name == whole
    records = [json.loads((tmp_path / folder / "assignment" / "runs" / whole).read_text())
               for folder in ("whole", "stopped")]
    assert records[0]["history"] == records[1]["history"]
    assert records[0]["test_accuracy"] == records[1]["test_accuracy"]
