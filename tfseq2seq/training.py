"""``tfseq2seq train``: data → vocabularies → model → ``fit`` with callbacks, in a run dir."""

import json
import logging
import math
import os
import warnings

import keras

from tfseq2seq import run_dir as rd
from tfseq2seq.callbacks import BestModelSaver, DevDecodeMetrics
from tfseq2seq.config import save_config
from tfseq2seq.data import make_dataset
from tfseq2seq.datasets import load_corpus
from tfseq2seq.model import Seq2Seq
from tfseq2seq.schedules import ScheduledSampling
from tfseq2seq.text import Vocabulary, learn_wordpiece_vocab, make_tokenizer, write_text_atomic

logger = logging.getLogger(__name__)


def load_config_corpus(config):
    """The corpus a config names (TSV paths come from ``data.train/dev/test``)."""
    data = config.data
    if data.corpus == "tsv":
        if not data.train:
            raise ValueError("data.corpus is 'tsv' but data.train is not set")
        return load_corpus("tsv", train=data.train, dev=data.dev, test=data.test, strict=data.strict)
    return load_corpus(data.corpus)


def make_tokenizers(config, train_pairs):
    """Source and target tokenizers; WordPiece vocabularies are learned from ``train_pairs``."""
    data, made = config.data, []
    for kind, texts in ((data.source_tokenizer, [s for s, _ in train_pairs]),
                        (data.target_tokenizer, [t for _, t in train_pairs])):
        options = {"lowercase": data.lowercase, "normalize": data.normalize}
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


def _datasets(config, run, corpus, train_pairs):
    data, training = config.data, config.training
    common = dict(src_tokenizer=run.source_tokenizer, tgt_tokenizer=run.target_tokenizer,
                  src_vocab=run.source_vocab, tgt_vocab=run.target_vocab,
                  batch_size=training.batch_size, max_source_len=data.max_source_len,
                  max_target_len=data.max_target_len, overlong=data.overlong)
    train, stats = make_dataset(train_pairs, shuffle=True, seed=training.seed,
                                bucket_boundaries="auto" if training.bucketing else None, **common)
    if not corpus.splits.get("dev"):
        raise ValueError(f"corpus {corpus.name!r} has no dev split; training needs one for "
                         "model selection (set data.dev to a TSV file)")
    dev_pairs = corpus.pairs("dev")[: data.dev_limit]
    dev, _ = make_dataset(dev_pairs, shuffle=False,
                          **{**common, "overlong": "truncate"})
    return train, dev, stats


def train(config, run_path, verbose=1):
    """Trains per ``config`` into ``run_path`` (resuming if a backup is there); returns history."""
    keras.utils.set_random_seed(config.training.seed)
    corpus, train_pairs, run = prepare_run(config, run_path)
    train_ds, dev_ds, stats = _datasets(config, run, corpus, train_pairs)
    steps = config.training.steps_per_epoch or math.ceil(stats.examples / config.training.batch_size)
    if config.training.steps_per_epoch:
        train_ds = train_ds.repeat()
    model = build_model(config, len(run.source_vocab), len(run.target_vocab))
    model.compile(optimizer=make_optimizer(config.training, steps),
                  jit_compile=config.training.jit_compile)
    warnings.filterwarnings("ignore", message="Your input ran out of data")  # unknown epoch size
    history = model.fit(train_ds, validation_data=dev_ds, epochs=config.training.epochs,
                        steps_per_epoch=config.training.steps_per_epoch, shuffle=False,
                        callbacks=_callbacks(config, run, corpus), verbose=verbose)
    write_text_atomic(os.path.join(run_path, "history.json"), json.dumps(history.history, indent=1))
    return history.history


def _callbacks(config, run, corpus):
    callbacks = [
        DevDecodeMetrics(run, corpus, limit=config.data.dev_limit or 500),
        BestModelSaver(run.file(rd.MODEL)),
        keras.callbacks.BackupAndRestore(run.file("backup")),
        keras.callbacks.TensorBoard(run.file("logs"), write_graph=False),
    ]
    if config.training.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(
            "val_loss", patience=config.training.early_stopping_patience))
    return callbacks
