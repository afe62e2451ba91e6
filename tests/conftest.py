"""Fixtures shared by the test files: a tiny data set on disk."""
import pytest

import generate_data_adding_problem as data


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Data sets of lengths 4 and 7 with 60/20/20 samples; returns their folder."""
    folder = tmp_path_factory.mktemp("data")
    data.main(["--lengths", "4", "7", "--train", "60", "--dev", "20", "--test", "20",
               "--data-dir", str(folder)])
    return str(folder)
