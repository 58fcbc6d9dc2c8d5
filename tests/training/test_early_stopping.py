"""Early stopping judged from the run's history, so a restart does not reset patience."""

import keras
import pytest

from tfseq2seq.training.backup import TrainingBackup
from tfseq2seq.training.callbacks import EarlyStopping


def _epoch_end(backup, callback, value):
    """One epoch end as ``fit`` runs it: the backup records the epoch, then the callback."""
    model = callback.model
    model.stop_training = False
    backup.history.setdefault("val_loss", []).append(value)
    callback.on_epoch_end(len(backup.history["val_loss"]) - 1, {"val_loss": value})
    return model.stop_training


def _fresh(backup, patience):
    callback = EarlyStopping(backup, patience)
    callback.set_model(keras.Sequential([keras.layers.Dense(1)]))
    return callback


def test_patience_counts_epochs_across_restarts(tmp_path):
    backup = TrainingBackup(str(tmp_path))
    callback = _fresh(backup, patience=2)
    assert [_epoch_end(backup, callback, v) for v in (1.0, 0.8, 0.9)] == [False, False, False]
    # the process dies; a new one restores the history and builds new callbacks
    restored = TrainingBackup(str(tmp_path))
    restored.history = {"val_loss": list(backup.history["val_loss"])}
    callback = _fresh(restored, patience=2)
    assert _epoch_end(restored, callback, 0.85)  # 2nd epoch without beating 0.8: stop


def test_only_a_strictly_better_value_restarts_the_count(tmp_path):
    backup = TrainingBackup(str(tmp_path))
    callback = _fresh(backup, patience=2)
    assert [_epoch_end(backup, callback, v) for v in (1.0, 0.5, 0.5, 0.4, 0.7, 0.4)] == [
        False, False, False, False, False, True]
    assert callback.epochs_without_improvement() == 2


@pytest.mark.parametrize("patience", [0, -1, 1.5, True, None])
def test_patience_must_be_a_positive_integer(tmp_path, patience):
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(TrainingBackup(str(tmp_path)), patience)
