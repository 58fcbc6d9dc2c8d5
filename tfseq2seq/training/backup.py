"""The training-state backup that lets an interrupted run resume where it stopped."""

import json
import os
import time

import keras

from tfseq2seq.util.files import save_atomic, write_text_atomic


class TrainingBackup(keras.callbacks.Callback):
    """Backs up the training state every ``every_steps`` batches and at each epoch end.

    ``directory/state-<optimizer step>-<epoch>.weights.h5`` holds the model and optimizer
    variables (so ``optimizer.iterations``, which drives the scheduled-sampling ε and the
    learning-rate schedule, comes back too); ``directory/state.json`` holds the epoch, the
    step within it, the sampling seed state and the history of the finished epochs. Both
    are written under temporary names and renamed, the weights first, each under a new
    name that the JSON then points to, so a crash at any moment leaves a consistent
    backup. The generation before the newest is kept too (``state.json["previous"]`` and
    its weights): workers of one multi-worker run save at the same steps, but a crash can
    land between two workers' saves, and then they can still agree on a common one.
    ``restore`` reads a generation back before ``fit``.
    """

    STATE = "state.json"

    def __init__(self, directory, every_steps=None):
        super().__init__()
        if every_steps is not None and (isinstance(every_steps, bool) or every_steps < 1):
            raise ValueError("training.backup_every_steps must be a positive integer or null, "
                             f"got {every_steps!r}")
        self.directory, self.every_steps = directory, every_steps
        self.epoch, self.step_offset = 0, 0
        self.history = {}  # epoch logs of the whole run, including epochs before a restart
        self.seconds = 0.0  # training wall time of the whole run up to the last backup
        self._since = None

    def state(self):
        """The saved ``state.json`` as a dict, or ``None`` when there is no backup."""
        try:
            with open(os.path.join(self.directory, self.STATE), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError as e:
            raise ValueError(f"{self.directory}: unreadable backup state ({e}); "
                             "delete the backup directory to start over") from None

    def restore(self, model, agree=None):
        """Loads a backup into ``model`` (compiled); returns ``(epoch, step)`` to resume at.

        Without ``agree``: the newest backup. With it (multi-worker runs), the one at the
        optimizer step ``agree(newest step here, or 0 without a backup)`` returns, i.e.
        the step every worker can resume from (0: start over); ``ValueError`` if this
        worker has neither that generation nor the one before.
        """
        state = self.state()
        if agree is not None:
            generations = [g for g in (state, (state or {}).get("previous")) if g]
            target = int(agree(int(state["iterations"]) if state else 0))
            chosen = [g for g in generations if int(g["iterations"]) == target]
            if target and not chosen:
                have = ", ".join(str(g["iterations"]) for g in generations) or "none"
                raise ValueError(
                    f"{self.directory}: the workers cannot agree on a backup to resume from "
                    f"(all have optimizer step {target}; this one has {have}); delete every "
                    "worker's backup directory to start over")
            state = chosen[0] if chosen else None
        if state is None:
            return 0, 0
        self.history = state.get("history", {})
        self.seconds = float(state.get("seconds", 0.0))
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        try:
            model.load_weights(os.path.join(self.directory, state["weights"]))
        except Exception as e:  # noqa: BLE001 — a backup of another model, or a damaged one
            raise ValueError(f"{self.directory}: the backup does not fit this model ({e}); "
                             "delete the backup directory to start over") from None
        if state.get("seed_state") is not None:
            model.seed_generator.state.assign(state["seed_state"])
        return int(state["epoch"]), int(state["step"])

    def on_train_begin(self, logs=None):
        self._since = time.monotonic()

    def elapsed(self):
        """Training wall seconds of the whole run so far, restarts included."""
        now = time.monotonic()
        if self._since is not None:
            self.seconds += now - self._since
        self._since = now
        return self.seconds

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_offset + batch + 1
        if self.every_steps and step % self.every_steps == 0:
            self._save(self.epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        logs = {**(logs or {}), "wall_seconds": self.elapsed()}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self._save(epoch + 1, 0)

    def _save(self, epoch, step):
        previous = self.state()
        iterations = int(self.model.optimizer.iterations.numpy())
        name = f"state-{iterations}-{epoch}.weights.h5"
        save_atomic(self.model.save_weights, os.path.join(self.directory, name), ".weights.h5")
        state = {"epoch": epoch, "step": step, "iterations": iterations, "weights": name,
                 "seed_state": self.model.seed_generator.state.numpy().tolist(),
                 "history": self.history, "seconds": self.elapsed()}
        if previous and previous["weights"] != name:
            state["previous"] = {k: v for k, v in previous.items() if k != "previous"}
        elif previous and previous.get("previous"):  # saved again at the same step
            state["previous"] = previous["previous"]
        write_text_atomic(os.path.join(self.directory, self.STATE), json.dumps(state))
        kept = {name, state.get("previous", {}).get("weights")}
        for old in os.listdir(self.directory):  # generations before the two kept
            if old.endswith(".weights.h5") and old not in kept:
                try:
                    os.remove(os.path.join(self.directory, old))
                except FileNotFoundError:
                    pass
