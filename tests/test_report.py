"""Table cells and run descriptions derived from run records."""
import report


def test_one_run_shows_its_test_accuracy_alone():
    assert report.cell_text([97.43]) == "97.4"


def test_several_runs_show_mean_sample_std_and_solved_count():
    # mean 99.1667; sample std sqrt(((0.8333)^2 + (1.1667)^2 + (0.3333)^2) / 2) = 1.041
    assert report.cell_text([100.0, 98.0, 99.5]) == "99.2 ± 1.0 (2/3)"
    assert report.cell_text([99.0, 30.0]) == "64.5 ± 48.8 (1/2)"   # 99.0 counts as solved


def test_diverged_runs_are_shown_as_such_not_as_numbers():
    assert report.cell_text([None]) == "diverged"
    assert report.cell_text([None, None]) == "diverged"
    assert report.cell_text([50.0, None, 52.0]) == "51.0 ± 1.4 (0/3) [1 diverged]"


def test_describe_run_says_model_length_seed_and_outcome():
    config = {"model": "lstm", "seq_len": 50, "seed": 3}
    finished = {"config": config, "status": "finished", "test_accuracy": 99.84, "epochs_run": 12,
                "train_seconds": 41.2, "diverged_epoch": None}
    assert report.describe_run(finished) == "LSTM L=50 seed=3: test 99.8 % after 12 epochs (41 s)"
    diverged = dict(finished, status="diverged", diverged_epoch=2, test_accuracy=None)
    assert report.describe_run(diverged) == "LSTM L=50 seed=3: diverged (non-finite loss) in epoch 2"
