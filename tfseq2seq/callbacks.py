"""Training callbacks: decode-based dev metrics and an atomic best-model saver."""

import json
import math
import os
import tempfile

import keras

from tfseq2seq.evaluation import metric_family, score


class DevDecodeMetrics(keras.callbacks.Callback):
    """After each epoch, greedy-decodes the first ``limit`` dev examples and adds
    ``val_exact_match`` (and ``val_wer``/``val_per`` or ``val_bleu``) to the epoch logs."""

    def __init__(self, run, corpus, limit=500):
        super().__init__()
        self.run, self.examples = run, corpus.examples("dev")[:limit]
        self.family = metric_family(run.config, corpus.name)

    def on_epoch_end(self, epoch, logs=None):
        from tfseq2seq.translator import Translator

        if logs is None or not self.examples:
            return
        self.run.model = self.model
        outputs = Translator(self.run).translate([ex.source for ex in self.examples])
        metrics = score(self.family, [t.text for t in outputs],
                        [ex.references for ex in self.examples])
        for key in ("exact_match", "wer", "per", "bleu", "chrf"):
            if key in metrics:
                logs[f"val_{key}"] = metrics[key]


class BestModelSaver(keras.callbacks.Callback):
    """Saves the model to ``path`` whenever ``val_loss`` improves.

    The file is written under a temporary name and renamed, so ``path`` always holds a
    whole model; the best value is kept beside it (``path + ".best.json"``) so a resumed
    run does not overwrite a better model with a worse one.
    """

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path, self.monitor = path, monitor
        self.best_path = path + ".best.json"

    def _best(self):
        try:
            with open(self.best_path, encoding="utf-8") as f:
                return json.load(f)["value"]
        except (OSError, ValueError, KeyError):
            return math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not value < self._best():
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".keras")
        os.close(fd)
        try:
            self.model.save(tmp)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        from tfseq2seq.text import write_text_atomic

        write_text_atomic(self.best_path, json.dumps({"value": float(value), "epoch": epoch + 1}))
