"""Run configuration: dataclasses with the one set of defaults, loaded from YAML.

Unknown keys are rejected with their full name (``model.unitz``), so a typo never
silently falls back to a default. ``--set section.key=value`` overrides are parsed as
YAML scalars (``--set training.epochs=2``, ``--set model.attention=null``).
"""

import dataclasses
import os
import typing

import yaml

from tfseq2seq.decoding.options import DecodingOptions


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


@dataclasses.dataclass
class DataConfig:
    corpus: str = "cmudict"            # cmudict | cedict | tsv | reverse (synthetic)
    train: str | None = None           # TSV paths, for corpus: tsv
    dev: str | None = None
    test: str | None = None
    source_tokenizer: str = "char"     # char | whitespace | wordpiece
    target_tokenizer: str = "whitespace"
    lowercase: bool | str = False      # true (both sides) | source (inputs only) | false
    normalize: str = "none"            # none | nfkc
    wordpiece_vocab_size: int = 8000
    min_count: int = 1
    max_vocab_size: int | None = None
    max_source_len: int | None = 32
    max_target_len: int | None = 40
    overlong: str = "drop"             # drop | truncate
    strict: bool = False
    metrics: str = "auto"              # auto | g2p (WER/PER) | translation (BLEU/chrF)
    train_limit: int | None = None     # use only the first N training pairs
    dev_limit: int | None = None       # evaluate on the first N dev examples per epoch


@dataclasses.dataclass
class ModelConfig:
    embedding_dim: int = 64
    one_hot_inputs: bool = False       # fixed one-hot inputs instead of learned embeddings
    units: int = 256
    cell: str = "gru"
    activation: str = "tanh"           # the elman cell's: tanh | identity | relu | sigmoid | hard_tanh
    encoder_layers: int = 1
    decoder_layers: int | None = None
    bidirectional: bool = False
    bidirectional_merge: str = "sum"
    attention: str | None = "general"
    attention_units: int | None = None
    attention_timing: str = "luong"    # luong (c_t from h_t) | bahdanau (c_t from h_{t-1})
    combine: str = "concat"
    input_feeding: bool = False
    dropout: float = 0.0


@dataclasses.dataclass
class SamplingConfig:
    schedule: str | None = None        # None: teacher forcing only
    mode: str = "argmax"
    p: float | None = None             # constant
    start: float | None = None         # linear
    end: float | None = None
    steps: int | None = None
    k: float | None = None             # exponential, inverse_sigmoid

    def params(self):
        return {k: v for k in ("p", "start", "end", "steps", "k")
                if (v := getattr(self, k)) is not None}


@dataclasses.dataclass
class TrainingConfig:
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.001
    lr_schedule: str = "constant"      # constant | cosine
    clipnorm: float | None = 1.0
    label_smoothing: float = 0.0       # of the training loss (0: plain cross-entropy)
    early_stopping_patience: int | None = None
    bucketing: bool = True
    seed: int = 0
    jit_compile: bool = False
    steps_per_epoch: int | None = None
    strategy: str = "default"          # default | mirrored | multi_worker
    backup_every_steps: int | None = 100  # also back up mid-epoch (null: only at epoch ends)
    keep_checkpoints: int | None = None  # keep the last N epochs' weights (for averaging)


DecodingConfig = DecodingOptions  # the ``decoding`` section (its defaults live there)


@dataclasses.dataclass
class Config:
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    decoding: DecodingConfig = dataclasses.field(default_factory=DecodingConfig)

    def to_dict(self):
        return dataclasses.asdict(self)


def from_dict(data, cls=Config, prefix=""):
    """Builds ``cls`` from a nested dict, rejecting unknown keys (all of them, in one
    error) and wrong types by name."""
    unknown = unknown_keys(data, cls, prefix)
    if unknown:
        raise ConfigError(f"unknown config key{'s' if len(unknown) > 1 else ''} "
                          + "; ".join(unknown))
    return _build(data, cls, prefix)


def unknown_keys(data, cls=Config, prefix=""):
    """``"'model.unitz' (model takes [...])"`` for every key of ``data`` that ``cls`` and
    its sections do not have."""
    if not isinstance(data, dict):
        return []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    found = []
    for key, value in data.items():
        if key not in fields:
            found.append(f"'{prefix}{key}' ({prefix.rstrip('.') or 'config'} takes "
                         f"{sorted(fields)})")
        elif dataclasses.is_dataclass(hints[key]):
            found.extend(unknown_keys(value, hints[key], f"{prefix}{key}."))
    return found


def _build(data, cls, prefix):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = _build(value, hint, f"{prefix}{key}.")
        else:
            values[key] = _check_type(f"{prefix}{key}", value, hint)
    return cls(**values)


def _check_type(name, value, hint):
    allowed = typing.get_args(hint) or (hint,)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    for kind in allowed:
        if kind is not type(None) and isinstance(value, kind) and not (
                kind is int and isinstance(value, bool)):
            return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    raise ConfigError(f"config key {name!r} must be {names}, got {value!r}")


# The bundled configs: tfseq2seq/configs/ in the installed package (in a checkout, a
# symlink to the top-level configs/), so they are found from any directory.
BUNDLED_CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def bundled_configs():
    """Names of the bundled configs (``demo``, ``g2p``, ``smoke``, ...)."""
    if not os.path.isdir(BUNDLED_CONFIGS):
        return []
    return sorted(n[:-5] for n in os.listdir(BUNDLED_CONFIGS) if n.endswith(".yaml"))


def config_path(config):
    """A ``--config`` value -> the YAML file to read: an existing file as given, else the
    bundled config of that name (``smoke`` or ``smoke.yaml``), else ``config`` unchanged."""
    config = os.fspath(config)
    if os.path.isfile(config) or os.path.dirname(config):
        return config
    name = config if config.endswith(".yaml") else f"{config}.yaml"
    bundled = os.path.join(BUNDLED_CONFIGS, name)
    return bundled if os.path.isfile(bundled) else config


def load_config(path, overrides=()):
    """Reads a YAML config (a path, or a bundled config's name, e.g. ``"g2p"``) and
    applies ``section.key=value`` overrides."""
    path = config_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path} (bundled configs: "
                          f"{', '.join(bundled_configs()) or 'none'})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    _resolve_data_paths(data, os.path.dirname(os.path.abspath(path)))
    return from_dict(apply_overrides(data, overrides))


def _resolve_data_paths(data, base):
    """Makes relative ``data.train/dev/test`` paths of a config file relative to the file."""
    section = data.get("data") if isinstance(data, dict) else None
    if not isinstance(section, dict):
        return
    for key in ("train", "dev", "test"):
        value = section.get(key)
        if isinstance(value, str) and not os.path.isabs(value):
            section[key] = os.path.normpath(os.path.join(base, value))


def apply_overrides(data, overrides):
    """Returns a copy of ``data`` with each ``a.b=value`` override set (value parsed as YAML)."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in (data or {}).items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {item!r} must look like section.key=value")
        section = data.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ConfigError(f"override {item!r}: {parts[0]!r} is not a section")
        section[parts[1]] = yaml.safe_load(raw) if raw.strip() else None
    return data


def save_config(config, path):
    """Writes the resolved config as YAML (atomically)."""
    from tfseq2seq.util.files import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
