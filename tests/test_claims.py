"""Several commands on one results folder train each run once: a run is claimed before it
trains (a lock beside its checkpoint); a command that finds it claimed trains the others, waits
for it and takes its record, or trains it itself once the holder is gone."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from experiment import claims, configs, datasets, grid, runs, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = socket.gethostname()


def start_ticks(pid):
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat, field 22)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def lock_path(results_dir, config):
    return os.path.join(str(results_dir), "runs", runs.run_key(config) + ".lock")


def hold(results_dir, config, pid, host=HOST, started=None):
    """Write the run's lock as the command of process `pid` on `host` holds it."""
    path = lock_path(results_dir, config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"host": host, "pid": pid,
                   "started": start_ticks(pid) if started is None else started}, f)
    return path


def tiny_configs(tiny_data, seeds=(0,)):
    data_options = datasets.data_options(tiny_data, [4])[4]
    return [configs.run_config("lstm", 4, seed, data_options, epochs=1, hidden=4) for seed in seeds]


def made_up_record(config, accuracy):
    return {"config": config, "status": "finished", "diverged_epoch": None, "epochs_run": 1,
            "dev_accuracy": accuracy, "test_accuracy": accuracy, "train_seconds": 0.0,
            "history": [{"epoch": 0, "dev_accuracy": accuracy}]}


def never_train(config, arrays, **options):
    pytest.fail(f"trained seed {config['seed']}, which another command was training")


@pytest.fixture
def other_command():
    """A live process of this host, standing for another command that holds a run."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def test_a_run_another_command_trains_is_waited_for_and_its_record_taken(
        tiny_data, tmp_path, monkeypatch, capsys, other_command):
    [config] = tiny_configs(tiny_data)
    path = hold(tmp_path, config, other_command.pid)

    def finish():                      # the other command saves the record, then lets the run go
        time.sleep(0.6)
        runs.save_record(str(tmp_path), made_up_record(config, 12.5))
        os.remove(path)

    finishing = threading.Thread(target=finish)
    finishing.start()
    monkeypatch.setattr(training, "train_run", never_train)
    try:
        [record], _ = grid.train_grid([config], tiny_data, str(tmp_path), 1)
    finally:
        finishing.join()
    assert record["test_accuracy"] == 12.5
    out = capsys.readouterr().out
    assert f"waiting for LSTM P=4 L=4 seed=0: trained by pid {other_command.pid} on host {HOST}\n" in out
    assert not os.path.exists(path)


def test_a_run_whose_holder_dies_without_its_record_is_trained_by_the_command_waiting_for_it(
        tiny_data, tmp_path, capsys, other_command):
    [config] = tiny_configs(tiny_data)
    path = hold(tmp_path, config, other_command.pid)
    killer = threading.Timer(0.6, other_command.kill)   # left unreaped: a zombie is no holder
    killer.start()
    try:
        [record], _ = grid.train_grid([config], tiny_data, str(tmp_path), 1)
    finally:
        killer.join()
    assert record["status"] == "finished" and record["history"][-1]["epoch"] == 1
    assert os.path.exists(runs.record_path(str(tmp_path), config))
    out = capsys.readouterr().out
    assert "waiting for LSTM P=4 L=4 seed=0" in out and "taking over LSTM P=4 L=4 seed=0" in out
    assert not os.path.exists(path)


def ended_process():
    """(pid, start time) of a process of this host that has ended."""
    process = subprocess.Popen(["true"])
    started = start_ticks(process.pid)
    process.wait()
    return process.pid, started


@pytest.mark.parametrize("holder", ["ended", "pid now another process's", "other host, silent"])
def test_a_lock_whose_holder_is_gone_is_taken_over(holder, tiny_data, tmp_path, capsys):
    [config] = tiny_configs(tiny_data)
    if holder == "ended":
        pid, started = ended_process()
        path = hold(tmp_path, config, pid, started=started)
    elif holder == "pid now another process's":
        path = hold(tmp_path, config, os.getpid(), started=start_ticks(os.getpid()) - 1)
    else:
        path = hold(tmp_path, config, 1, host="another-host", started=0)
        long_ago = time.time() - claims.STALE_SECONDS - 5
        os.utime(path, (long_ago, long_ago))
    [record], _ = grid.train_grid([config], tiny_data, str(tmp_path), 1)
    assert record["status"] == "finished"
    assert "taking over LSTM P=4 L=4 seed=0" in capsys.readouterr().out
    assert not os.path.exists(path)


def test_a_lock_from_another_host_holds_while_it_is_refreshed(tmp_path, monkeypatch):
    path = str(tmp_path / "run.lock")
    with open(path, "w") as f:
        json.dump({"host": "another-host", "pid": 1, "started": 0}, f)
    a_while_ago = time.time() - claims.STALE_SECONDS + 60
    os.utime(path, (a_while_ago, a_while_ago))
    monkeypatch.setattr(claims, "REFRESH_SECONDS", 0.05)
    with claims.Claims() as held:
        claimed, holder = held.claim(path)
        assert not claimed and holder["host"] == "another-host"
        long_ago = time.time() - claims.STALE_SECONDS - 5
        os.utime(path, (long_ago, long_ago))
        claimed, holder = held.claim(path)
        assert claimed and holder["host"] == "another-host"
        with open(path) as f:
            assert json.load(f)["pid"] == os.getpid()
        os.utime(path, (long_ago, long_ago))
        time.sleep(0.3)                                   # a holder refreshes its locks
        assert time.time() - os.stat(path).st_mtime < 5
    assert not os.path.exists(path)


def test_a_run_is_claimed_while_it_trains_and_let_go_when_the_command_is_interrupted(
        tiny_data, tmp_path, monkeypatch):
    [config] = tiny_configs(tiny_data)
    path = lock_path(tmp_path, config)
    holders = []

    def interrupted(config, arrays, **options):
        with open(path) as f:
            holders.append(json.load(f))
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train_run", interrupted)
    with pytest.raises(SystemExit, match="interrupted"):
        grid.train_grid([config], tiny_data, str(tmp_path), 1)
    [holder] = holders
    assert (holder["host"], holder["pid"], holder["started"]) == (HOST, os.getpid(),
                                                                  start_ticks(os.getpid()))
    assert not os.path.exists(path)


class TwoAtATime:
    """An executor that uses next_job as the pool and the cluster do: up to two runs in flight,
    asking for more while any is; `after_first()` runs once the first record is back."""

    def __init__(self, after_first):
        self.after_first, self.handed = after_first, []

    def parallel(self):
        return True

    def train_runs(self, next_job, on_record, most=None):
        running = []
        while True:
            while len(running) < 2 and (job := next_job()) is not None:
                running.append(job)
                self.handed.append(job[0]["seed"])
            if not running:
                return
            job = running.pop(0)
            on_record(job, made_up_record(job[0], 50.0))
            if self.after_first is not None:
                self.after_first()
                self.after_first = None


def test_a_parallel_executor_trains_the_other_runs_while_one_is_claimed_elsewhere(
        tiny_data, tmp_path, other_command):
    first, *others = tiny_configs(tiny_data, seeds=(0, 1, 2))
    path = hold(tmp_path, first, other_command.pid)

    def other_command_finishes():
        runs.save_record(str(tmp_path), made_up_record(first, 77.0))
        os.remove(path)

    executor = TwoAtATime(other_command_finishes)
    records, _ = grid.train_grid([first, *others], tiny_data, str(tmp_path), executor)
    assert executor.handed == [1, 2]
    assert [r["test_accuracy"] for r in records] == [77.0, 50.0, 50.0]


TRAIN_LOGGED = """
import sys, time
import train_rnn
from experiment import training

real = training.train_run

def logged(config, arrays, **options):
    with open(sys.argv[1], "a") as log:
        log.write(f"{config['seed']}\\n")
    time.sleep(1.0)                       # long enough for the other command to meet the run
    return real(config, arrays, **options)

training.train_run = logged
train_rnn.rebuild_folder_report = lambda *args, **kwargs: None     # figures: seconds, beside the point
train_rnn.main(sys.argv[2:])
"""


def test_two_identical_commands_started_together_train_each_run_once(tiny_data, tmp_path):
    log = tmp_path / "trained.log"
    argv = [sys.executable, "-c", TRAIN_LOGGED, str(log), "--models", "lstm", "--lengths", "4",
            "--seeds", "2", "--hidden", "4", "--epochs", "2", "--train", "60", "--dev", "20",
            "--test", "20", "--data-dir", tiny_data, "--results-dir", str(tmp_path / "results"),
            "--jobs", "1"]
    commands = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True) for _ in range(2)]
    outputs = [command.communicate(timeout=120)[0] for command in commands]
    assert [command.returncode for command in commands] == [0, 0], outputs
    assert sorted(log.read_text().split()) == ["0", "1"]          # each run trained once
    waits = [line for out, other in zip(outputs, reversed(commands)) for line in out.splitlines()
             if line.startswith("waiting for LSTM P=4 L=4 seed=")
             and line.endswith(f": trained by pid {other.pid} on host {HOST}")]
    assert waits, outputs
    runs_dir = tmp_path / "results" / "runs"
    assert (sorted(p.suffix for p in runs_dir.iterdir())                 # no lock left behind
            == [".json", ".json", ".safetensors", ".safetensors"])
