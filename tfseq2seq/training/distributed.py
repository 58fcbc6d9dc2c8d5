"""Distribution strategies for ``tfseq2seq train`` and who writes the run directory.

``training.strategy`` (or ``train --strategy``) is one of:

- ``default``: one device (TensorFlow's default strategy);
- ``mirrored``: ``tf.distribute.MirroredStrategy`` over all local GPUs (or the CPU);
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster and this
  process's place in it come from the standard ``TF_CONFIG`` environment variable.

Only the chief writes the run directory. Every other worker trains into a private
temporary directory (the same path on every restart of that worker, so it can resume
from its own backup) that is deleted when training finishes. See docs/distributed.md.
"""

import hashlib
import json
import os
import shutil
import tempfile

STRATEGIES = ("default", "mirrored", "multi_worker")


def cluster_spec():
    """``(cluster dict, task type, task index)`` from ``TF_CONFIG`` (``({}, None, 0)`` if unset)."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}, None, 0
    try:
        tf_config = json.loads(raw)
        task = tf_config.get("task", {})
        return tf_config.get("cluster", {}), task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as e:
        raise ValueError(f"TF_CONFIG is not valid JSON with 'cluster' and 'task': {e}") from None


def is_chief():
    """True for the task that writes the run directory: ``chief`` if the cluster has
    one, else ``worker`` 0; a process without ``TF_CONFIG`` is its own chief."""
    cluster, task_type, index = cluster_spec()
    if task_type is None:
        return True
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def make_strategy(name):
    """The ``tf.distribute`` strategy called ``name`` (create it before other TF work)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        cluster, task_type, _ = cluster_spec()
        if not cluster or task_type is None:
            raise ValueError("training.strategy 'multi_worker' needs TF_CONFIG with a cluster "
                             "and this process's task (see docs/distributed.md)")
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    raise ValueError(f"training.strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def worker_run_dir(run_path):
    """Where this process writes: ``run_path`` on the chief, else a private temp directory
    (stable per run directory and task, so a restarted worker finds its backup)."""
    if is_chief():
        return run_path
    _, task_type, index = cluster_spec()
    key = hashlib.sha1(os.path.abspath(run_path).encode("utf-8")).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), f"tfseq2seq-{key}-{task_type}{index}")


def cleanup_worker_dir(run_path, written_path):
    """Deletes a non-chief worker's temporary directory (never the chief's run directory)."""
    if os.path.abspath(written_path) != os.path.abspath(run_path):
        shutil.rmtree(written_path, ignore_errors=True)


def distribute_dataset_options(dataset):
    """Shards by data: the pipelines are built from in-memory tensors, not files, so
    every worker builds the same global batches and keeps its slice of each."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def build_for_strategy(model, strategy, dataset):
    """Builds the compiled ``model``'s metric, loss and optimizer state under ``strategy``.

    Keras 3 (3.15, keras-team/keras#20585) builds this state at the start of ``fit`` and
    ``evaluate`` from a first batch that, when there are several replicas, it tries to
    all-reduce as a nested structure, which MultiWorkerMirroredStrategy rejects
    ("Attempt to convert a value (PerReplica...)"). The build needs only the shapes and
    dtypes of one local batch, so it is done here, once, and Keras' per-``fit`` step is
    turned off for this model.

    Across several workers Keras also averages each step's logs with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalar metric values
    ("Invalid reduction dimension 0 for input with 0 dimensions"); there, the train and
    test steps return their logs as ``[1]`` vectors, which that reduction averages over
    the workers back into scalars.
    """
    import tensorflow as tf

    if strategy.num_replicas_in_sync == 1:
        return
    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(dataset.take(1))))
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        model.train_step = _logs_as_vectors(model.train_step)
        model.test_step = _logs_as_vectors(model.test_step)


def _logs_as_vectors(step):
    import tensorflow as tf

    def vector_logs_step(data):
        return {name: tf.reshape(value, [1]) for name, value in step(data).items()}

    return vector_logs_step


def backup_agreement(strategy):
    """``TrainingBackup.restore``'s ``agree`` for a multi-worker run (``None`` otherwise):
    maps this worker's newest backup step to the smallest over all workers, so every
    worker resumes from the same step (a crash between two workers' saves leaves them one
    backup apart). A collective: every worker must call it, at the same point."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None

    def smallest(step):
        steps = strategy.experimental_distribute_values_from_function(
            lambda _: tf.constant([step], tf.int64))
        return int(tf.reduce_min(strategy.gather(steps, axis=0)))

    return smallest
