"""``tfseq2seq average``: the element-wise mean of the last epochs' weights (kept with
``training.keep_checkpoints``), written as a new, complete run directory."""

import json
import os
import shutil
import tempfile

import h5py
import keras
import numpy as np

from tfseq2seq import run_dir as rd
from tfseq2seq.training.callbacks import epoch_weights
from tfseq2seq.training.train import CHECKPOINTS
from tfseq2seq.util.checks import require_positive_int
from tfseq2seq.util.files import atomic_path, save_atomic, write_text_atomic

AVERAGED = "averaged.json"
COPIED = (rd.CONFIG, rd.SOURCE_VOCAB, rd.TARGET_VOCAB, rd.TOKENIZERS)


def average_checkpoints(run_dir, output_dir, last=None, epochs=None):
    """Writes the run directory ``output_dir``: ``run_dir``'s config, vocabularies and
    tokenizers, and a ``model.keras`` with the mean float weights of the last ``last``
    epoch files or of the epochs numbered ``epochs`` (neither: all kept), its other
    variables from the newest. Raises ``ValueError`` naming the bad value, writing nothing."""
    _refuse(output_dir)
    run = rd.load_run(run_dir)
    files = _chosen(run_dir, last, epochs)
    model = _averaged(run.model, files)
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".tmp-average-")
    try:
        os.umask(mask := os.umask(0))
        os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes it 0700
        for name in COPIED:
            with atomic_path(os.path.join(staging, name), name) as tmp:
                shutil.copyfile(run.file(name), tmp)
        write_text_atomic(os.path.join(staging, AVERAGED), json.dumps(
            {"run_dir": os.path.abspath(run_dir), "epochs": [e for e, _ in files],
             "files": [os.path.abspath(p) for _, p in files]}, indent=1))
        save_atomic(model.save, os.path.join(staging, rd.MODEL), ".keras")
        _refuse(output_dir)
        os.replace(staging, output_dir)  # the whole directory appears at once
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def _refuse(output_dir):
    if os.path.exists(os.path.join(output_dir, rd.MODEL)):
        raise ValueError(f"output {output_dir} already holds {rd.MODEL}; choose a new directory")
    if os.path.exists(output_dir) and not (os.path.isdir(output_dir) and not os.listdir(output_dir)):
        raise ValueError(f"output {output_dir} exists and is not an empty directory")


def _chosen(run_dir, last, epochs):
    """``[(epoch, path)]`` of the files to average, oldest first."""
    directory = os.path.join(run_dir, CHECKPOINTS)
    if not os.path.isdir(directory):
        raise ValueError(f"{run_dir} has no {CHECKPOINTS}/ directory; train with "
                         "training.keep_checkpoints: N to keep the last N epochs' weights")
    kept = dict(epoch_weights(directory))
    if not kept:
        raise ValueError(f"{directory} holds no epoch-<N>.weights.h5 files")
    held = f"{directory} holds epochs {', '.join(map(str, kept))}"
    if last is not None and epochs is not None:
        raise ValueError("give either last or epochs, not both")
    if epochs is not None:
        wanted = [require_positive_int("epochs", e) for e in epochs]
        unknown = [e for e in wanted if e not in kept]
        if not wanted or len(set(wanted)) < len(wanted):
            raise ValueError(f"epochs must name each epoch once, got {wanted!r}")
        if unknown:
            raise ValueError(f"no weights of epoch {', '.join(map(str, unknown))}: {held}")
        return [(e, kept[e]) for e in sorted(wanted)]
    if last is not None and require_positive_int("last", last) > len(kept):
        raise ValueError(f"last={last} asks for more epochs than kept: {held}")
    return list(kept.items())[-(last or len(kept)):]


def _signature(path):
    """``{dataset name: shape}`` of a weights file, without the optimizer's state."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: found.update({k: v.shape}) if isinstance(v, h5py.Dataset)
                     and not k.startswith("optimizer/") else None)
    return found


def _averaged(model, files):
    """A fresh copy of ``model`` holding the mean of ``files``' float weights."""
    with tempfile.TemporaryDirectory() as tmp:
        save_atomic(model.save_weights, os.path.join(tmp, "m.weights.h5"), ".weights.h5")
        expected = _signature(os.path.join(tmp, "m.weights.h5"))
    sums = {}
    for _, path in files:
        copy = type(model).from_config(model.get_config())
        try:
            found = _signature(path)
            problems = [f"{k} is {found.get(k, 'missing')} in the file, {expected.get(k, 'absent')} "
                        "in the model" for k in sorted(expected.keys() | found.keys())
                        if found.get(k) != expected.get(k)]
            if problems:
                raise ValueError("; ".join(problems[:3]) + (" ..." if len(problems) > 3 else ""))
            copy.load_weights(path)
        except (OSError, ValueError) as e:  # not HDF5, or another model's weights
            raise ValueError(f"{path} does not fit the run's model: "
                             f"{str(e).strip().splitlines()[0]}") from None
        for i, v in enumerate(copy.weights):
            if keras.backend.is_float_dtype(v.dtype):
                sums[i] = sums.get(i, 0.0) + np.asarray(v.numpy(), np.float64)
    for i, total in sums.items():  # copy holds the newest file: the rest comes from it
        copy.weights[i].assign(keras.ops.cast(total / len(files), copy.weights[i].dtype))
    return copy
