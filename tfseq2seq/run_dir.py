"""A run directory: everything needed to use a trained model again.

    R/config.yaml       the resolved configuration
    R/source.vocab      R/target.vocab      vocabularies (one token per line)
    R/tokenizers.json   tokenizer settings (and the learned WordPiece vocabularies)
    R/model.keras       the best model (by dev WER for G2P, else dev loss)
    R/logs/             TensorBoard logs       R/backup/  state for resuming
"""

import dataclasses
import json
import os

from tfseq2seq.config import Config, ConfigError, from_dict
from tfseq2seq.text.vocab import Vocabulary
from tfseq2seq.util.files import write_text_atomic

CONFIG, MODEL, TOKENIZERS = "config.yaml", "model.keras", "tokenizers.json"
SOURCE_VOCAB, TARGET_VOCAB = "source.vocab", "target.vocab"


class RunDirError(ValueError):
    """A run directory that is missing files or whose files do not fit together."""


@dataclasses.dataclass
class Run:
    """The pieces of a run directory, loaded and cross-checked."""

    path: str
    config: Config
    source_tokenizer: object  # text.tokenizers.Tokenizer
    target_tokenizer: object
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    model: object = None

    def file(self, name):
        return os.path.join(self.path, name)


def save_tokenizers(run_dir, source, target):
    write_text_atomic(os.path.join(run_dir, TOKENIZERS), json.dumps(
        {"source": source.get_config(), "target": target.get_config()}, ensure_ascii=False))


def load_run(run_dir, with_model=True):
    """Loads a run directory; raises ``RunDirError`` naming what is missing or mismatched."""
    import yaml

    from tfseq2seq.text.tokenizers import make_tokenizer

    if not os.path.isdir(run_dir):
        raise RunDirError(f"run directory not found: {run_dir}")
    needed = [CONFIG, TOKENIZERS, SOURCE_VOCAB, TARGET_VOCAB] + ([MODEL] if with_model else [])
    missing = [n for n in needed if not os.path.exists(os.path.join(run_dir, n))]
    if missing:
        hint = " (has training finished an epoch?)" if MODEL in missing else ""
        raise RunDirError(f"{run_dir} is missing {', '.join(missing)}{hint}")
    try:
        with open(os.path.join(run_dir, CONFIG), encoding="utf-8") as f:
            config = from_dict(yaml.safe_load(f))
        with open(os.path.join(run_dir, TOKENIZERS), encoding="utf-8") as f:
            tokenizers = json.load(f)
        source_tok = make_tokenizer(**tokenizers["source"])
        target_tok = make_tokenizer(**tokenizers["target"])
        source_vocab = Vocabulary.load(os.path.join(run_dir, SOURCE_VOCAB))
        target_vocab = Vocabulary.load(os.path.join(run_dir, TARGET_VOCAB))
    except (ConfigError, ValueError, KeyError, TypeError, json.JSONDecodeError, yaml.YAMLError) as e:
        raise RunDirError(f"{run_dir}: unreadable run files: {e}") from None
    run = Run(run_dir, config, source_tok, target_tok, source_vocab, target_vocab)
    if with_model:
        run.model = _load_model(run)
    return run


def _load_model(run):
    from tfseq2seq.model import load_model

    path = run.file(MODEL)
    try:
        model = load_model(path, compile=False)
    except Exception as e:  # a truncated or foreign file: say which
        raise RunDirError(f"{path}: cannot load model: {e}") from None
    checks = [("source", model.source_vocab_size, len(run.source_vocab)),
              ("target", model.target_vocab_size, len(run.target_vocab))]
    for side, model_size, vocab_size in checks:
        if model_size != vocab_size:
            raise RunDirError(
                f"{run.path}: {side}.vocab has {vocab_size} tokens but the model was built for "
                f"{model_size}; the vocabulary does not belong to this model")
    differences = config_differences(run.config.model, model.get_config())
    if differences:
        raise RunDirError(f"{run.path}: config.yaml describes a different model than model.keras "
                          f"({'; '.join(differences)})")
    return model


def config_differences(model_config, saved):
    """``model.KEY: config X, model Y`` for each ``model`` setting that ``saved`` (a
    ``Seq2Seq.get_config()``) contradicts."""
    wanted = dict(vars(model_config))
    if wanted.get("decoder_layers") is None:
        wanted["decoder_layers"] = wanted.get("encoder_layers")
    return [f"model.{key}: config {value!r}, model {saved[key]!r}"
            for key, value in wanted.items()
            if key in saved and saved[key] != value]
