"""tf.data pipelines: length-bucketed batches of token ids for training.

``make_dataset`` tokenizes and looks up every pair once, in the graph, through the run's
``TextPipeline`` (the text path the exported model uses too), keeps the ids in memory, and
builds a dataset that reshuffles every epoch and batches by similar length.
Bucketing has ``Dataset.bucket_by_sequence_length``'s semantics (exclusive upper
bounds, one bucket per batch, partial batches unless ``drop_remainder``) but is
computed per batch, not per example: on 130k CMUdict-sized pairs an epoch takes
~1-2 s instead of ~10-20 s with per-example map + bucket_by_sequence_length.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfseq2seq.data.tsv import DataError
from tfseq2seq.text.pipeline import TextPipeline
from tfseq2seq.text.vocab import END_ID, PAD_ID, START_ID

logger = logging.getLogger(__name__)
OVERLONG_POLICIES = ("drop", "truncate")


@dataclasses.dataclass
class DatasetStats:
    """Counts from ``make_dataset`` (pairs are source/target examples)."""

    examples: int
    dropped_overlong: int
    truncated: int
    dropped_empty: int
    bucket_boundaries: list[int]


def auto_bucket_boundaries(lengths: np.ndarray, max_buckets: int = 8) -> list[int]:
    """Exclusive upper length bounds at quantiles of ``lengths`` [n], strictly increasing."""
    if len(lengths) == 0:
        return []
    quantiles = np.quantile(lengths, np.linspace(0.0, 1.0, max_buckets + 1)[1:-1])
    low, high = int(np.min(lengths)), int(np.max(lengths))
    return sorted({int(q) + 1 for q in quantiles if low < int(q) + 1 <= high})


def _resolve_boundaries(bucket_boundaries, lengths: np.ndarray) -> list[int]:
    """None | "auto" | ints -> sorted distinct positive exclusive upper bounds."""
    if isinstance(bucket_boundaries, str):
        if bucket_boundaries != "auto":
            raise DataError(f"bucket_boundaries must be None, 'auto' or a list of ints, got {bucket_boundaries!r}")
        return auto_bucket_boundaries(lengths)
    boundaries = sorted({int(b) for b in bucket_boundaries or []})
    if boundaries and boundaries[0] < 1:
        raise DataError(f"bucket boundaries must be positive, got {boundaries}")
    return boundaries


def _validate_args(pairs, batch_size, max_source_len, max_target_len, overlong):
    if overlong not in OVERLONG_POLICIES:
        raise DataError(f"overlong must be one of {OVERLONG_POLICIES}, got {overlong!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    for name, value in (("max_source_len", max_source_len), ("max_target_len", max_target_len)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise DataError(f"{name} must be None or a positive integer, got {value!r}")
    if not pairs:
        raise DataError("no training pairs (the input is empty or every line was malformed)")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(s, str) for s in pair):
            raise DataError(f"pair {i} is not a (source, target) tuple of strings: {pair!r}")


def _select(src: tf.RaggedTensor, tgt: tf.RaggedTensor, max_source_len, max_target_len, overlong):
    """Drops empty pairs and drops/truncates overlong ones. src, tgt: int32 [n, (len)]."""
    src_len, tgt_len = src.row_lengths().numpy(), tgt.row_lengths().numpy()
    empty = (src_len == 0) | (tgt_len == 0)
    over = np.zeros_like(empty)
    if max_source_len is not None:
        over |= src_len > max_source_len
    if max_target_len is not None:
        over |= tgt_len > max_target_len
    over &= ~empty
    keep = ~empty & ~over if overlong == "drop" else ~empty
    index = np.flatnonzero(keep)
    src, tgt = tf.gather(src, index), tf.gather(tgt, index)
    if overlong == "truncate":
        src = src[:, :max_source_len] if max_source_len else src
        tgt = tgt[:, :max_target_len] if max_target_len else tgt
    counts = {"dropped_empty": int(empty.sum()), "dropped_overlong": int(over.sum()) if overlong == "drop" else 0,
              "truncated": int(over.sum()) if overlong == "truncate" else 0}
    return src, tgt, counts


def _batch_plan(buckets: np.ndarray, batch_size: int):
    """Returns (plan, number of batches) for examples with fixed bucket ids ``buckets`` [n].

    plan(order int64 [n]) -> int64 [batches, batch_size]: example indices, -1 padded.
    Each batch holds consecutive examples (in ``order``) of one bucket.
    """
    num_buckets = int(buckets.max()) + 1
    counts = np.bincount(buckets, minlength=num_buckets)
    per_bucket = -(-counts // batch_size)  # ceil
    batch_offset = tf.constant(np.cumsum(per_bucket) - per_bucket, tf.int64)
    example_offset = tf.constant(np.cumsum(counts) - counts, tf.int64)
    bucket_of = tf.constant(buckets, tf.int64)
    num_batches = int(per_bucket.sum())

    def plan(order):
        bucket = tf.gather(bucket_of, order)
        by_bucket = tf.argsort(bucket, stable=True)
        order, bucket = tf.gather(order, by_bucket), tf.gather(bucket, by_bucket)
        position = tf.range(tf.size(order, out_type=tf.int64)) - tf.gather(example_offset, bucket)
        batch = tf.gather(batch_offset, bucket) + position // batch_size
        return tf.RaggedTensor.from_value_rowids(order, batch, nrows=num_batches).to_tensor(-1)

    return plan, num_batches


def _batched_dataset(src: tf.RaggedTensor, tgt: tf.RaggedTensor, buckets: np.ndarray, batch_size: int,
                     shuffle: bool, seed: int, drop_remainder: bool) -> tf.data.Dataset:
    """Batches of ((source [b, s], target_in [b, t]), target_out [b, t]), int32, 0-padded.

    Vectorized: per epoch the example order is shuffled, cut into same-bucket
    batches (one plan op), the batches are shuffled, and each batch is one gather.
    """
    n = int(src.nrows())
    plan, num_batches = _batch_plan(buckets, batch_size)
    tgt_in = tf.concat([tf.fill([n, 1], START_ID), tgt], axis=1)
    tgt_out = tf.concat([tgt, tf.fill([n, 1], END_ID)], axis=1)

    def gather(indices):
        indices = tf.boolean_mask(indices, indices >= 0)
        rows = [tf.gather(x, indices).to_tensor(PAD_ID) for x in (src, tgt_in, tgt_out)]
        return (rows[0], rows[1]), rows[2]

    dataset = tf.data.Dataset.range(n)
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(n).map(plan).unbatch()
    if drop_remainder:
        dataset = dataset.filter(lambda indices: indices[-1] >= 0)
    if shuffle:
        dataset = dataset.shuffle(num_batches, seed=seed, reshuffle_each_iteration=True)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_dataset(pairs: Sequence[tuple[str, str]], pipeline: TextPipeline, batch_size: int,
                 max_source_len: int | None = None, max_target_len: int | None = None,
                 overlong: str = "drop", shuffle: bool = True, seed: int = 0,
                 bucket_boundaries: str | Sequence[int] | None = None,
                 drop_remainder: bool = False) -> tuple[tf.data.Dataset, DatasetStats]:
    """Builds batches ``((source_ids [b, s], target_in_ids [b, t]), target_out_ids [b, t])``.

    All int32, 0-padded. source: text ids only; target_in: <start> + ids;
    target_out: ids + <end>. ``max_*_len`` count text tokens (without
    <start>/<end>); overlong pairs are dropped or truncated (<end> is still
    appended). Pairs with an empty side after tokenization are dropped.
    ``bucket_boundaries``: None (plain padded batches), "auto" (length
    quantiles) or exclusive upper bounds on max(len(source), len(target)+1).
    ``batch_size`` is examples per batch.
    """
    _validate_args(pairs, batch_size, max_source_len, max_target_len, overlong)
    sources, targets = zip(*pairs)
    src = pipeline.source_ids_unlimited(tf.constant(sources))
    tgt = pipeline.target_ids(tf.constant(targets))
    src, tgt, counts = _select(src, tgt, max_source_len, max_target_len, overlong)
    n = int(src.nrows())
    if n == 0:
        raise DataError(f"no usable pairs left out of {len(pairs)}: {counts}")
    lengths = np.maximum(src.row_lengths().numpy(), tgt.row_lengths().numpy() + 1)
    boundaries = _resolve_boundaries(bucket_boundaries, lengths)
    buckets = np.digitize(lengths, boundaries) if boundaries else np.zeros(n, np.int64)
    dataset = _batched_dataset(src, tgt, buckets, batch_size, shuffle, seed, drop_remainder)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    stats = DatasetStats(examples=n, bucket_boundaries=boundaries, **counts)
    logger.info("dataset: %d examples of %d pairs; %s; buckets %s", n, len(pairs), counts, boundaries)
    if counts["dropped_overlong"] or counts["dropped_empty"] or counts["truncated"]:
        logger.warning("dataset: dropped %d overlong and %d empty pairs, truncated %d",
                       counts["dropped_overlong"], counts["dropped_empty"], counts["truncated"])
    return dataset, stats
