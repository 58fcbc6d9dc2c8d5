"""Training callbacks: decode-based dev metrics, an atomic best-model saver, the last
epochs' weights for averaging, early stopping that counts across restarts (it reads the
``backup.TrainingBackup`` history), and a progress bar that numbers epochs out of the
whole run when a resumed epoch is trained on its own."""

import json
import math
import os
import re

import keras

from tfseq2seq.inference.evaluation import metric_family, score
from tfseq2seq.util.checks import require_positive_int
from tfseq2seq.util.files import save_atomic, write_text_atomic


class DevDecodeMetrics(keras.callbacks.Callback):
    """After each epoch, greedy-decodes the first ``limit`` dev examples and adds
    ``val_exact_match`` (and ``val_wer``/``val_per`` or ``val_bleu``) to the epoch logs."""

    def __init__(self, run, corpus, limit=500):
        super().__init__()
        self.run, self.examples = run, corpus.examples("dev")[:limit]
        self.family = metric_family(run.config, corpus.name)
        self._translator = None

    def on_epoch_end(self, epoch, logs=None):
        from tfseq2seq.inference.translator import Translator

        if logs is None or not self.examples:
            return
        if self._translator is None or self._translator.model is not self.model:
            self.run.model = self.model
            self._translator = Translator(self.run)
        outputs = self._translator.translate([ex.source for ex in self.examples])
        metrics = score(self.family, [t.text for t in outputs],
                        [ex.references for ex in self.examples])
        for key in ("exact_match", "wer", "per", "bleu", "chrf"):
            if key in metrics:
                logs[f"val_{key}"] = metrics[key]


class BestModelSaver(keras.callbacks.Callback):
    """Saves the model to ``path`` whenever ``monitor`` (lower is better: ``val_loss``, or
    ``val_wer`` from ``DevDecodeMetrics``, which must run first) improves.

    The file is written under a temporary name and renamed, so ``path`` always holds a
    whole model; the best value and its monitor are kept beside it (``path +
    ".best.json"``) so a resumed run does not overwrite a better model with a worse one
    (a value of another monitor does not count).
    """

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path, self.monitor = path, monitor
        self.best_path = path + ".best.json"

    def _best(self):
        try:
            with open(self.best_path, encoding="utf-8") as f:
                best = json.load(f)
        except (OSError, ValueError):
            return math.inf
        return best.get("value", math.inf) if best.get("monitor", "val_loss") == self.monitor else math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self._best():
            return
        save_atomic(self.model.save, self.path, ".keras")
        write_text_atomic(self.best_path, json.dumps(
            {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1}))


class EpochWeights(keras.callbacks.Callback):
    """Keeps the model weights of the last ``keep`` epochs as
    ``directory/epoch-<NNN>.weights.h5`` (written atomically; older ones are deleted),
    for checkpoint averaging (``tfseq2seq average``)."""

    def __init__(self, directory, keep):
        super().__init__()
        self.directory = directory
        self.keep = require_positive_int("training.keep_checkpoints", keep)

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.directory, f"epoch-{epoch + 1:03d}.weights.h5")
        save_atomic(self.model.save_weights, path, ".weights.h5")
        for _, old in epoch_weights(self.directory)[:-self.keep]:
            os.remove(old)


EPOCH_FILE = re.compile(r"epoch-(\d+)\.weights\.h5")


def epoch_weights(directory):
    """``[(epoch, path)]`` of the epoch weight files in ``directory``, oldest first (by
    epoch number)."""
    if not os.path.isdir(directory):
        return []
    found = [(EPOCH_FILE.fullmatch(n), n) for n in os.listdir(directory)]
    return sorted((int(m.group(1)), os.path.join(directory, n)) for m, n in found if m)


class EarlyStopping(keras.callbacks.Callback):
    """Stops training once ``monitor`` has not improved for ``patience`` epochs, judged
    from the whole run's history (``TrainingBackup.history``, which survives restarts),
    so patience does not start over when a run resumes or finishes an interrupted epoch
    in a ``fit`` of its own (``keras.callbacks.EarlyStopping`` keeps its count in memory,
    reset by every ``fit``). Goes after the backup in the callback list."""

    def __init__(self, backup, patience, monitor="val_loss"):
        super().__init__()
        self.backup, self.monitor = backup, monitor
        self.patience = require_positive_int("early stopping patience", patience)

    def epochs_without_improvement(self):
        values = self.backup.history.get(self.monitor, [])
        if not values:
            return 0
        best = min(range(len(values)), key=lambda i: (values[i], i))  # first best epoch
        return len(values) - 1 - best

    def on_epoch_end(self, epoch, logs=None):
        if self.epochs_without_improvement() >= self.patience:
            self.model.stop_training = True


class RunProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, numbering epochs out of ``epochs`` (the whole run) even when
    ``fit`` covers only part of it, as when a resumed epoch is finished on its own."""

    def __init__(self, epochs):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params({**params, "epochs": self.run_epochs})
