"""Training: ``train`` (config -> run directory, with ``model.fit``), its callbacks, the
training-state backup for resuming, and distribution strategies."""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "train": ("train", "prepare_run", "build_model", "load_config_corpus", "make_optimizer"),
    "backup": ("TrainingBackup",),
}))
