"""A tiny trained run directory from configs/smoke.yaml, for tests that need one."""

import os

from tfseq2seq.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = os.path.join(ROOT, "configs", "smoke.yaml")


def train_smoke_run(tmp_path_factory, *overrides, name="run"):
    """Trains ``configs/smoke.yaml`` for 3 steps (plus ``overrides``) into a new directory
    and returns its path."""
    from tfseq2seq.training.train import train

    path = str(tmp_path_factory.mktemp(name) / "r")
    config = load_config(SMOKE, ["training.epochs=1", "training.steps_per_epoch=3",
                                 "data.dev_limit=8", *overrides])
    train(config, path, verbose=0)
    return path
