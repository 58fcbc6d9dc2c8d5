"""``tfseq2seq train``: data → vocabularies → model → ``fit`` with callbacks, in a run dir."""

import json
import logging
import math
import os
import shutil
import warnings

import keras

from tfseq2seq import run_dir as rd
from tfseq2seq.config import save_config
from tfseq2seq.data.batching import make_dataset
from tfseq2seq.data.corpora import load_config_corpus  # noqa: F401  (also public here)
from tfseq2seq.losses import MaskedCrossEntropy
from tfseq2seq.model import Seq2Seq
from tfseq2seq.schedules import ScheduledSampling
from tfseq2seq.text.pipeline import TextPipeline
from tfseq2seq.text.tokenizers import make_tokenizer
from tfseq2seq.text.vocab import Vocabulary
from tfseq2seq.text.wordpiece import learn_wordpiece_vocab
from tfseq2seq.training.backup import TrainingBackup
from tfseq2seq.training.callbacks import (
    BestModelSaver,
    DevDecodeMetrics,
    EarlyStopping,
    EpochWeights,
    RunProgbar,
)
from tfseq2seq.training.distributed import (
    backup_agreement,
    build_for_strategy,
    cleanup_worker_dir,
    distribute_dataset_options,
    make_strategy,
    worker_run_dir,
)
from tfseq2seq.util.files import write_text_atomic

logger = logging.getLogger(__name__)
BACKUP, HISTORY, CHECKPOINTS = "backup", "history.json", "checkpoints"


def make_tokenizers(config, train_pairs):
    """Source and target tokenizers; WordPiece vocabularies are learned from ``train_pairs``."""
    data, made = config.data, []
    if data.lowercase not in (True, False, "source"):
        raise ValueError(f"data.lowercase must be true, false or source, got {data.lowercase!r}")
    for side, kind, texts in (("source", data.source_tokenizer, [s for s, _ in train_pairs]),
                              ("target", data.target_tokenizer, [t for _, t in train_pairs])):
        lowercase = data.lowercase is True or (data.lowercase == "source" and side == "source")
        options = {"lowercase": lowercase, "normalize": data.normalize}
        if kind == "wordpiece":
            options["vocab"] = learn_wordpiece_vocab(texts, data.wordpiece_vocab_size, **options)
        made.append(make_tokenizer(kind, **options))
    return made


def build_vocab(tokenizer, texts, config):
    """A vocabulary of the tokens ``tokenizer`` makes of ``texts`` (min_count/max_size)."""
    import tensorflow as tf

    tokens = []
    for start in range(0, len(texts), 8192):
        batch = tokenizer.tokenize(tf.constant(texts[start:start + 8192])).to_list()
        tokens.extend([t.decode("utf-8") for t in row] for row in batch)
    return Vocabulary.build(tokens, min_count=config.data.min_count,
                            max_size=config.data.max_vocab_size)


def prepare_run(config, run_path):
    """Creates (or, when resuming, re-reads) the run directory's text pieces."""
    corpus = load_config_corpus(config)
    train_pairs = corpus.pairs("train")[: config.data.train_limit]
    if os.path.exists(os.path.join(run_path, rd.TOKENIZERS)):
        run = rd.load_run(run_path, with_model=False)
        if run.config.model != config.model or run.config.data != config.data:
            raise rd.RunDirError(
                f"{run_path} holds a run with a different data/model config; "
                "use a new --run-dir (or the same config to resume)")
        return corpus, train_pairs, run
    source_tok, target_tok = make_tokenizers(config, train_pairs)
    source_vocab = build_vocab(source_tok, [s for s, _ in train_pairs], config)
    target_vocab = build_vocab(target_tok, [t for _, t in train_pairs], config)
    os.makedirs(run_path, exist_ok=True)
    source_vocab.save(os.path.join(run_path, rd.SOURCE_VOCAB))
    target_vocab.save(os.path.join(run_path, rd.TARGET_VOCAB))
    rd.save_tokenizers(run_path, source_tok, target_tok)
    save_config(config, os.path.join(run_path, rd.CONFIG))
    return corpus, train_pairs, rd.Run(run_path, config, source_tok, target_tok,
                                       source_vocab, target_vocab)


def build_model(config, source_vocab_size, target_vocab_size):
    """A ``Seq2Seq`` from the config's ``model`` and ``sampling`` sections."""
    sampling = config.sampling
    schedule = (ScheduledSampling(sampling.schedule, sampling.mode, **sampling.params())
                if sampling.schedule else None)
    return Seq2Seq(source_vocab_size, target_vocab_size, sampling=schedule,
                   seed=config.training.seed, **vars(config.model))


def make_optimizer(training, steps_per_epoch):
    rate = training.learning_rate
    if training.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, max(1, training.epochs * steps_per_epoch))
    elif training.lr_schedule != "constant":
        raise ValueError(f"training.lr_schedule must be 'constant' or 'cosine', got {training.lr_schedule!r}")
    return keras.optimizers.Adam(rate, clipnorm=training.clipnorm)


def _datasets(config, run, corpus, train_pairs, replicas=1):
    data, training = config.data, config.training
    common = dict(pipeline=TextPipeline.from_run(run),
                  batch_size=training.batch_size, max_source_len=data.max_source_len,
                  max_target_len=data.max_target_len, overlong=data.overlong)
    # batch_size is the global batch; with several replicas, each gets a slice of every
    # batch, and partial batches are dropped so that no replica gets an empty one.
    train, stats = make_dataset(train_pairs, shuffle=True, seed=training.seed,
                                bucket_boundaries="auto" if training.bucketing else None,
                                drop_remainder=replicas > 1, **common)
    if not corpus.splits.get("dev"):
        raise ValueError(f"corpus {corpus.name!r} has no dev split; training needs one for "
                         "model selection (set data.dev to a TSV file)")
    dev_pairs = corpus.pairs("dev")[: data.dev_limit]
    dev, _ = make_dataset(dev_pairs, shuffle=False,
                          **{**common, "overlong": "truncate"})
    if replicas > 1:
        train, dev = distribute_dataset_options(train), distribute_dataset_options(dev)
    return train, dev, stats


def train(config, run_path, verbose=1):
    """Trains per ``config`` into ``run_path``; returns the history of the whole run.

    If ``run_path/backup`` holds a backup of an interrupted run, training resumes from it
    (epoch, step, weights, optimizer state); the resumed epoch is finished first, then
    the remaining epochs. With ``training.strategy: multi_worker`` only the chief writes
    ``run_path``; other workers use a temporary directory that is deleted at the end.
    """
    strategy = make_strategy(config.training.strategy)  # before any other TF work
    keras.utils.set_random_seed(config.training.seed)
    write_path = worker_run_dir(run_path)
    try:
        history = _train(config, write_path, strategy, verbose)
    except BaseException:
        if write_path != run_path and os.path.exists(os.path.join(write_path, BACKUP)):
            raise  # keep a worker's backup so that it can resume too
        cleanup_worker_dir(run_path, write_path)
        raise
    cleanup_worker_dir(run_path, write_path)
    return history


def _train(config, run_path, strategy, verbose):
    corpus, train_pairs, run = prepare_run(config, run_path)
    replicas = strategy.num_replicas_in_sync
    train_ds, dev_ds, stats = _datasets(config, run, corpus, train_pairs, replicas)
    per_epoch = config.training.steps_per_epoch
    steps = per_epoch or math.ceil(stats.examples / config.training.batch_size)
    if per_epoch:
        train_ds = train_ds.repeat()
    with strategy.scope():
        model = build_model(config, len(run.source_vocab), len(run.target_vocab))
        model.compile(optimizer=make_optimizer(config.training, steps),
                      loss=MaskedCrossEntropy(label_smoothing=config.training.label_smoothing),
                      jit_compile=config.training.jit_compile)
        backup = TrainingBackup(run.file(BACKUP), config.training.backup_every_steps)
        epoch, step = backup.restore(model, agree=backup_agreement(strategy))
    build_for_strategy(model, strategy, train_ds)
    warnings.filterwarnings("ignore", message="Your input ran out of data")  # unknown epoch size
    epochs = config.training.epochs
    if epoch or step:
        print(f"resuming from {run.file(BACKUP)}: epoch {epoch + 1}/{epochs}, step {step}, "
              f"optimizer step {int(model.optimizer.iterations.numpy())}", flush=True)
    callbacks = _callbacks(config, run, corpus) + [backup]
    if config.training.early_stopping_patience:
        callbacks.append(EarlyStopping(backup, config.training.early_stopping_patience))
    callbacks.append(RunProgbar(epochs))
    fit = dict(validation_data=dev_ds, shuffle=False, callbacks=callbacks, verbose=verbose)
    if step and epoch < epochs:  # finish the interrupted epoch on its own
        backup.step_offset = step
        model.fit(train_ds.skip(step), initial_epoch=epoch, epochs=epoch + 1,
                  steps_per_epoch=per_epoch and max(1, per_epoch - step), **fit)
        epoch += 1
    if epoch < epochs and not model.stop_training:
        model.fit(train_ds, initial_epoch=epoch, epochs=epochs, steps_per_epoch=per_epoch, **fit)
    write_text_atomic(run.file(HISTORY), json.dumps(backup.history, indent=1))
    shutil.rmtree(run.file(BACKUP), ignore_errors=True)
    return backup.history


def _selection_metric(config, corpus):
    """What picks the saved ``model.keras``: the dev WER (greedy, first ``data.dev_limit``
    words) for G2P, which tracks the score users see better than the teacher-forced dev
    loss does (the loss rises while the WER still falls; benchmarks/QUALITY.md); else the
    dev loss."""
    from tfseq2seq.inference.evaluation import metric_family

    return "val_wer" if metric_family(config, corpus.name) == "g2p" else "val_loss"


def _callbacks(config, run, corpus):
    callbacks = [
        DevDecodeMetrics(run, corpus, limit=config.data.dev_limit or 500),
        BestModelSaver(run.file(rd.MODEL), monitor=_selection_metric(config, corpus)),
        keras.callbacks.TensorBoard(run.file("logs"), write_graph=False),
    ]
    if config.training.keep_checkpoints:
        callbacks.append(EpochWeights(run.file(CHECKPOINTS), config.training.keep_checkpoints))
    return callbacks
