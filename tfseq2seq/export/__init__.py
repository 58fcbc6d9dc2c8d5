"""Export for TensorFlow Serving: the signatures (``signatures.ServingModule``), the
exporters (``exporters``: default and XLA), TF Serving's version layout (``versions``),
warm-up records (``warmup``), the op check (``opcheck``) and the check through
TensorFlow's C API loader, the one TF Serving uses (``capi``)."""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "exporters": ("export_model", "export_run", "make_exporter", "Exporter", "XlaExporter",
                  "EXPORTERS"),
    "signatures": ("ServingModule", "SIGNATURES", "OUTPUT_KEYS", "TEXT_SPEC"),
    "xla": ("xla_greedy", "xla_warmup_batches", "XLA_LENGTH_MULTIPLE", "XLA_WARMUP_TOKENS"),
    "versions": ("existing_versions", "choose_version"),
    "warmup": ("predict_request", "write_warmup_requests", "read_warmup_requests",
               "WARMUP_PATH", "MAX_WARMUP_RECORDS"),
    "opcheck": ("check_ops", "op_names", "FORBIDDEN_OPS"),
}))
