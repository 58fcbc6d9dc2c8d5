import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)

import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))  # test helpers such as reversal.py
