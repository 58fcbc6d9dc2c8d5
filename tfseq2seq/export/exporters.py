"""Exporters: short named classes that write one SavedModel version for TF Serving.

``base_path/<version>/`` gets ``saved_model.pb``, ``variables/``, ``assets/`` (the two
vocabulary files, copied by ``tf.saved_model.save`` because the lookup tables are built
from them) and ``assets.extra/tf_serving_warmup_requests``. ``Exporter`` ("default")
serves the model's own greedy and beam loops; ``XlaExporter`` ("xla") compiles the greedy
signature with XLA and adds warm-up requests for the programs it compiles.

    make_exporter("xla").export(model, pipeline, "export/g2p", options)
"""

import os

import tensorflow as tf

from tfseq2seq.decoding.options import DecodingOptions
from tfseq2seq.export.signatures import SIGNATURES, ServingModule
from tfseq2seq.export.versions import choose_version, new_version_dir
from tfseq2seq.export.warmup import as_bytes, write_warmup_requests
from tfseq2seq.export.xla import XLA_WARMUP_TOKENS, xla_greedy, xla_warmup_batches
from tfseq2seq.util.checks import require_nonnegative_int

DEFAULT_WARMUP_TEXTS = ("hello",)


class Exporter:
    """Exports a model with its text pipeline and decoding options.

    Args:
        warmup_texts: inputs of the warm-up requests (one request per signature); they
            are also run once before anything is written, so a failing signature is
            reported here rather than when a server loads the model.
    """

    name = "default"

    def __init__(self, warmup_texts=DEFAULT_WARMUP_TEXTS):
        texts = as_bytes([warmup_texts] if isinstance(warmup_texts, (str, bytes)) else warmup_texts)
        if not texts:
            raise ValueError("`warmup_texts` must hold at least one text")
        self.warmup_texts = texts

    def greedy_graph(self, model, options):
        """The greedy decoding graph to serve (``None``: ``model.greedy_graph``)."""
        return None

    def warmup_requests(self, pipeline):
        """``(texts, signature name)`` pairs for the warm-up file."""
        return [(self.warmup_texts, name) for name in SIGNATURES]

    def export(self, model, pipeline, base_path, options=None, version=None):
        """Writes ``base_path/<version>/`` (``version``: default one more than the largest
        there); returns its path. Nothing is left behind on failure."""
        base_path = os.fspath(base_path)
        if version is not None:
            choose_version(base_path, version)  # fail before the slow part
        _check_vocab_sizes(model, pipeline)
        options = (options or DecodingOptions()).validate()
        module = ServingModule(model, pipeline, options, self.greedy_graph(model, options))
        for name, fn in module.signatures().items():  # fail here, not at server start-up
            try:
                fn(tf.constant(self.warmup_texts))
            except tf.errors.InvalidArgumentError as e:
                raise ValueError(f"warmup texts fail in signature {name!r}: {e.message}") from e
        with new_version_dir(base_path, version) as (tmp, version):
            tf.saved_model.save(module, tmp, signatures=module.signatures())
            write_warmup_requests(tmp, self.warmup_requests(pipeline),
                                  model_name=os.path.basename(os.path.abspath(base_path)))
        return os.path.join(base_path, str(version))


class XlaExporter(Exporter):
    """The greedy signature compiled by XLA (``export.xla``); the warm-up file also holds
    one request per program that batches of up to ``warmup_rows`` texts (0: none) of up
    to ``max_source_len`` tokens (else ``XLA_WARMUP_TOKENS``) compile, so that a server
    compiles them while loading rather than on the first request of each shape.
    ``tensorflow_model_server`` needs ``--xla_cpu_compilation_enabled=true``."""

    name = "xla"

    def __init__(self, warmup_texts=DEFAULT_WARMUP_TEXTS, warmup_rows=32):
        super().__init__(warmup_texts)
        self.warmup_rows = require_nonnegative_int("xla_warmup_rows", warmup_rows)

    def greedy_graph(self, model, options):
        return xla_greedy(model, options.max_output_len)

    def warmup_requests(self, pipeline):
        batches = xla_warmup_batches(pipeline.source_tokenizer,
                                     pipeline.max_source_len or XLA_WARMUP_TOKENS,
                                     self.warmup_rows)
        return super().warmup_requests(pipeline) + [(b, "serving_default") for b in batches]


EXPORTERS = {cls.name: cls for cls in (Exporter, XlaExporter)}


def make_exporter(name="default", **options):
    """The exporter called ``name`` (``"default"`` or ``"xla"``), built with ``options``."""
    if name not in EXPORTERS:
        raise ValueError(f"unknown exporter {name!r}; choose one of {sorted(EXPORTERS)}")
    return EXPORTERS[name](**options)


def _check_vocab_sizes(model, pipeline):
    for side, expected, got in (("source", model.source_vocab_size, pipeline.source_vocab_size),
                                ("target", model.target_vocab_size, pipeline.target_vocab_size)):
        if got != expected:
            raise ValueError(f"the {side} vocabulary has {got} tokens but the model's "
                             f"{side}_vocab_size is {expected}")


def export_run(run, base_path, exporter="default", version=None, overlong="truncate",
               warmup_texts=DEFAULT_WARMUP_TEXTS, xla_warmup_rows=32, ensemble=(), **decoding):
    """Exports a loaded ``run_dir.Run`` with its own text pipeline and its config's
    ``decoding`` section (``decoding`` keywords that are not ``None`` override fields of
    it, e.g. ``beam_width=8``); what ``tfseq2seq export`` and the demo call. ``ensemble``:
    more loaded runs of the same data, decoded together with ``run`` as one model."""
    from tfseq2seq.text.pipeline import TextPipeline

    options = run.config.decoding.replace(**decoding)
    extra = {"warmup_rows": xla_warmup_rows} if exporter == XlaExporter.name else {}
    model = run.model
    if ensemble:
        from tfseq2seq.ensemble import Ensemble

        for other in ensemble:
            _check_same_text(run, other)
        model = Ensemble([run.model] + [other.model for other in ensemble])
    return make_exporter(exporter, warmup_texts=warmup_texts, **extra).export(
        model, TextPipeline.from_run(run, overlong), base_path, options, version)


def _check_same_text(run, other):
    """Ensemble members must turn text into ids (and back) the same way."""
    for what in ("source_vocab", "target_vocab"):
        if getattr(run, what) != getattr(other, what):
            raise ValueError(f"{other.path}: its {what.replace('_', ' ')}ulary differs from "
                             f"{run.path}'s; ensemble members must share vocabularies")
    for what in ("source_tokenizer", "target_tokenizer"):
        if getattr(run, what).get_config() != getattr(other, what).get_config():
            raise ValueError(f"{other.path}: its {what.replace('_', ' ')} differs from "
                             f"{run.path}'s; ensemble members must share tokenizers")


def export_model(model, source_tokenizer, target_tokenizer, source_vocab_path, target_vocab_path,
                 base_path, version=None, max_source_len=None, overlong="truncate",
                 beam_width=None, length_penalty=None, max_output_len=None,
                 warmup_texts=DEFAULT_WARMUP_TEXTS, jit_compile=False, xla_warmup_rows=32):
    """Exports ``model`` from its parts (tokenizers, vocabulary files); returns the version
    path. ``max_source_len``/``overlong``: see ``TextPipeline``; ``beam_width``,
    ``length_penalty``, ``max_output_len``: ``DecodingOptions`` fields (``None``: its
    default); ``jit_compile``: the ``XlaExporter``."""
    from tfseq2seq.text.pipeline import TextPipeline
    from tfseq2seq.text.vocab import Vocabulary

    base_path = os.fspath(base_path)
    if version is not None:
        choose_version(base_path, version)  # before loading anything
    pipeline = TextPipeline(source_tokenizer, target_tokenizer, Vocabulary.load(source_vocab_path),
                            Vocabulary.load(target_vocab_path), max_source_len, overlong)
    options = DecodingOptions().replace(beam_width=beam_width, length_penalty=length_penalty,
                                        max_output_len=max_output_len)
    exporter = (XlaExporter(warmup_texts, xla_warmup_rows) if jit_compile
                else Exporter(warmup_texts))
    return exporter.export(model, pipeline, base_path, options, version)
