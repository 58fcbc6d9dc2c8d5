"""SavedModel export for TensorFlow Serving: string in, string out, all in-graph.

``export_model`` writes ``base_path/<version>/`` with ``saved_model.pb``, ``variables/``,
``assets/`` (the two vocabulary files, copied there by ``tf.saved_model.save`` because
the lookup tables are built from them with ``TextFileInitializer``) and
``assets.extra/tf_serving_warmup_requests``. Two signatures, same input and outputs:

- ``serving_default``: greedy decoding; ``beam_search``: beam search with the beam width
  and length penalty fixed at export time.
- input ``text``: string ``[batch]``.
- outputs: ``text`` string ``[batch]`` (detokenized), ``tokens`` string
  ``[batch, out_len]`` ("" after ``lengths``), ``token_ids`` int32 ``[batch, out_len]``
  (0 after ``lengths``, no ``<end>``), ``lengths`` int32 ``[batch]``, ``scores`` float32
  ``[batch]`` (sum of log-probabilities, ``<end>`` included), ``attention`` float32
  ``[batch, out_len, in_len]``, where ``in_len = max(1, longest tokenized input)``.

Inputs with no tokens (empty strings) give empty text, length 0, score 0 and no
attention; invalid UTF-8 becomes U+FFFD (the tokenizer's preprocessing), which is
``<unk>`` unless it is in the vocabulary.
"""

import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tfseq2seq import decoding
from tfseq2seq import text as text_lib
from tfseq2seq.checks import require_choice, require_positive_int
from tfseq2seq.model import IDS_SPEC, SCALAR_SPEC, default_max_length

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
SIGNATURES = ("serving_default", "beam_search")
OUTPUT_KEYS = ("text", "tokens", "token_ids", "lengths", "scores", "attention")
OVERLONG = ("truncate", "reject")
WARMUP_PATH = os.path.join("assets.extra", "tf_serving_warmup_requests")
XLA_LENGTH_MULTIPLE = 8  # the XLA export pads inputs to a multiple of this many tokens
XLA_WARMUP_TOKENS = 32  # with no max_source_len, XLA warm-up covers inputs up to this long


class ServingModule(tf.Module):
    """What gets saved: the model's variables, both tokenizers, both lookup tables, and
    one ``tf.function`` per signature. The Keras model itself is not tracked (only its
    variables), so optimizer state and Keras metadata stay out of the SavedModel."""

    def __init__(self, model, source_tokenizer, target_tokenizer, source_vocab, target_vocab,
                 max_source_len=None, overlong="truncate", beam_width=5, length_penalty=0.6,
                 max_output_len=None, jit_compile=False):
        super().__init__(name="tfseq2seq_serving")
        if max_source_len is not None:
            require_positive_int("max_source_len", max_source_len)
        if max_output_len is not None:
            require_positive_int("max_output_len", max_output_len)
        require_positive_int("beam_width", beam_width)
        if isinstance(length_penalty, bool) or not length_penalty >= 0:
            raise ValueError(f"`length_penalty` must be a number >= 0, got {length_penalty!r}")
        self.max_source_len = max_source_len
        self.overlong = require_choice("overlong", overlong, OVERLONG)
        self.max_output_len = max_output_len
        # The tf.Variables behind the Keras variables: tracking Keras variables makes
        # tf.saved_model.save add a second copy of each, which the C++ loader (TF Serving)
        # restores while the signatures read the uninitialized originals
        # (keras-team/keras#20095 / tensorflow/serving#2250; test_capi_* catches this).
        self.model_variables = [_tf_variable(v) for v in model.variables]
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.source_table = source_vocab.token_to_id_table()
        self.target_table = target_vocab.id_to_token_table()
        self._greedy = xla_greedy(model, max_output_len) if jit_compile else model.greedy_graph
        self._beam = lambda ids, n: model.beam_graph(ids, n, beam_width, float(length_penalty))

    @tf.function(input_signature=[TEXT_SPEC])
    def greedy(self, text):
        return self._serve(text, self._greedy)

    @tf.function(input_signature=[TEXT_SPEC])
    def beam_search(self, text):
        return self._serve(text, self._beam)

    def signatures(self):
        return {"serving_default": self.greedy.get_concrete_function(),
                "beam_search": self.beam_search.get_concrete_function()}

    def encode(self, text):
        """string ``[batch]`` -> (source ids int32 ``[batch, max(1, n)]``, token counts)."""
        tokens = self.source_tokenizer.tokenize(text)
        limit = self.max_source_len
        if limit is not None and self.overlong == "reject":
            tf.debugging.assert_less_equal(
                tokens.row_lengths(), tf.constant(limit, tf.int64),
                message=f"input text has more than max_source_len={limit} tokens")
        elif limit is not None:
            tokens = tokens[:, :limit]
        ids = text_lib.lookup_ids(tokens, self.source_table)
        counts = tf.cast(ids.row_lengths(), tf.int32)
        # At least one column: the encoder cannot run over zero time steps.
        shape = tf.stack([ids.nrows(out_type=tf.int32), tf.maximum(tf.reduce_max(counts), 1)])
        return ids.to_tensor(text_lib.PAD_ID, shape=shape), counts

    def _serve(self, text, decode):
        source_ids, counts = self.encode(text)
        if self.max_output_len is None:
            max_length = default_max_length(tf.shape(source_ids)[1])
        else:
            max_length = tf.constant(self.max_output_len, tf.int32)
        return self._outputs(decode(source_ids, max_length), counts > 0)

    def _outputs(self, decoded, has_input):
        lengths = tf.where(has_input, decoded["lengths"], 0)
        out_len = tf.maximum(tf.reduce_max(lengths), 0)
        mask = tf.sequence_mask(lengths, out_len)
        token_ids = tf.where(mask, decoded["token_ids"][:, :out_len], 0)
        # Each row's tokens come first (decoding never emits <pad> or <start>, and stops
        # before <end>), so the padded matrix detokenizes as it is.
        tokens = tf.where(mask, self.target_table.lookup(tf.cast(token_ids, tf.int64)), "")
        return {
            "text": self.target_tokenizer.join(tokens),
            "tokens": tokens,
            "token_ids": token_ids,
            "lengths": lengths,
            "scores": tf.where(has_input, decoded["scores"], 0.0),
            "attention": tf.where(mask[:, :, tf.newaxis], decoded["attention"][:, :out_len], 0.0),
        }


def export_model(model, source_tokenizer, target_tokenizer, source_vocab_path, target_vocab_path,
                 base_path, version=None, max_source_len=None, overlong="truncate", beam_width=5,
                 length_penalty=0.6, max_output_len=None, warmup_texts=("hello",),
                 jit_compile=False, xla_warmup_rows=32):
    """Exports ``model`` for TF Serving as ``base_path/<version>/``; returns that path.

    ``version`` defaults to one more than the largest integer version in ``base_path``
    (1 if none); an existing version is never overwritten. The SavedModel is written to a
    hidden temporary directory inside ``base_path`` and renamed into place, so a server
    polling ``base_path`` never sees a partial version. ``max_source_len`` limits the
    tokens per input: longer inputs are cut (``overlong="truncate"``) or make the request
    fail with InvalidArgumentError (``"reject"``); ``None`` means no limit (memory grows
    with ``in_len * out_len``). ``max_output_len`` fixes the decoding limit (default
    ``2 * in_len + 10``). ``warmup_texts`` become one warmup request per signature.
    With ``jit_compile`` (greedy signature compiled by XLA, one program per padded input
    shape), the warm-up also holds one request per program that requests of up to
    ``xla_warmup_rows`` texts (0: none) and ``max_source_len`` tokens (else
    ``XLA_WARMUP_TOKENS``) compile (``xla_warmup_batches``), so that a server compiles
    them while loading rather than on the first request of each shape.
    """
    base_path = os.fspath(base_path)
    if version is not None:
        _choose_version(base_path, version)  # fail before the slow part
    source_vocab = _load_vocab(source_vocab_path, model.source_vocab_size, "source")
    target_vocab = _load_vocab(target_vocab_path, model.target_vocab_size, "target")
    warmup_texts = _check_warmup_texts(warmup_texts)
    module = ServingModule(model, source_tokenizer, target_tokenizer, source_vocab, target_vocab,
                           max_source_len, overlong, beam_width, length_penalty, max_output_len,
                           jit_compile)
    for name, fn in module.signatures().items():  # fail here, not at server start-up
        try:
            fn(tf.constant(warmup_texts))
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(f"warmup texts fail in signature {name!r}: {e.message}") from e
    os.makedirs(base_path, exist_ok=True)
    version = _choose_version(base_path, version)
    final = os.path.join(base_path, str(version))
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=base_path)
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a server may run as another user
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        xla_batches = xla_warmup_batches(source_tokenizer, max_source_len or XLA_WARMUP_TOKENS,
                                         xla_warmup_rows) if jit_compile else []
        write_warmup_requests(tmp, warmup_texts, os.path.basename(os.path.abspath(base_path)),
                              xla_batches)
        if os.path.exists(final):
            raise FileExistsError(f"version {version} appeared in {base_path} during export")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def xla_greedy(model, max_output_len=None, length_multiple=XLA_LENGTH_MULTIPLE):
    """``model.greedy_graph`` with the encoder and the decode loop compiled by XLA.

    XLA compiles one program per input shape, so the id matrix is padded (with ``<pad>``,
    which the encoder masks and attention ignores) to a multiple of ``length_multiple``
    columns and a power-of-two number of rows, and the buffers are sized from those
    padded shapes while the decoding limit stays ``2 * in_len + 10`` (a runtime value):
    the outputs equal ``greedy_graph``'s up to the trailing padding, which is cut here.

    The weights are compiled in as constants (their values now, when this is called):
    no variable is read per call, and XLA folds what depends on weights alone (the input
    tables) at compile time (at batch 1, ~17 % of the compiled call's time here);
    it also means the SavedModel holds these weights twice (here and in ``variables/``
    for the ``beam_search`` signature).
    """
    weights = [(v, v.numpy()) for v in model.variables]

    @tf.function(jit_compile=True, input_signature=[IDS_SPEC, SCALAR_SPEC])
    def compiled(source_ids, max_length):
        frozen = [(v, tf.constant(value)) for v, value in weights]
        with keras.StatelessScope(state_mapping=frozen):
            memory, mask, state = model.encode(source_ids, fixed_shapes=True)
            batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
            buffer_length = max_output_len or default_max_length(src_len)
            return decoding.greedy_decode(
                model.step_fn(memory, mask), state, batch, src_len, max_length, model.start_id,
                model.end_id, buffer_length=buffer_length, trim=False)

    # One trace: tf.saved_model.save retraces the signature functions, and calling the
    # tf.function from there would put a second copy of the weights in the SavedModel.
    compiled = compiled.get_concrete_function()

    def greedy(source_ids, max_length):
        batch, length = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
        rows = tf.cast(tf.round(tf.pow(2.0, tf.math.ceil(
            tf.math.log(tf.cast(tf.maximum(batch, 1), tf.float32)) / tf.math.log(2.0)))), tf.int32)
        columns = -(-length // length_multiple) * length_multiple
        padded = tf.pad(source_ids, [[0, rows - batch], [0, columns - length]])
        out = compiled(padded, max_length)
        return {"token_ids": out["token_ids"][:batch], "lengths": out["lengths"][:batch],
                "scores": out["scores"][:batch], "attention": out["attention"][:batch, :, :length]}

    return greedy


def xla_warmup_batches(tokenizer, max_tokens, max_rows=32, length_multiple=XLA_LENGTH_MULTIPLE):
    """One batch of texts per program ``xla_greedy`` compiles for requests of up to
    ``max_rows`` texts of up to ``max_tokens`` tokens: rows 1, 2, 4, ... up to the first
    power of two >= ``max_rows``, times lengths ``length_multiple``, 2×, ... up to
    ``max_tokens`` rounded up (each text is exactly that many tokens of ``tokenizer``).
    Lengths that no probe text ("xxx…", "x x x…") tokenizes to are left out."""
    if not max_rows:
        return []
    lengths = range(length_multiple, -(-max_tokens // length_multiple) * length_multiple + 1,
                    length_multiple)
    probes = [p for n in lengths for p in (("x" * n).encode(), " ".join(["x"] * n).encode())]
    counts = dict(zip(probes, tokenizer.tokenize(tf.constant(probes)).row_lengths().numpy()))
    texts = [next((p for p in probes if counts[p] == n), None) for n in lengths]
    rows = [2 ** k for k in range((int(max_rows) - 1).bit_length() + 1)]
    return [[text] * r for r in rows for text in texts if text is not None]


def _tf_variable(variable):
    if isinstance(variable, tf.Variable):
        return variable
    inner = getattr(variable, "_value", None)  # keras.Variable on the TensorFlow backend
    if not isinstance(inner, tf.Variable):
        raise TypeError(f"cannot export variable {variable!r}: no tf.Variable behind it")
    return inner


def existing_versions(base_path):
    """Integer version directories in ``base_path`` (what TF Serving would load), sorted."""
    if not os.path.isdir(base_path):
        return []
    return sorted(int(n) for n in os.listdir(base_path)
                  if re.fullmatch(r"\d+", n) and os.path.isdir(os.path.join(base_path, n)))


def _choose_version(base_path, version):
    versions = existing_versions(base_path)
    if version is None:
        return versions[-1] + 1 if versions else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"`version` must be a non-negative integer, got {version!r}")
    if os.path.exists(os.path.join(base_path, str(version))):
        raise FileExistsError(
            f"version {version} already exists in {base_path}; refusing to overwrite it "
            f"(existing versions: {versions}; pass version=None for the next one)")
    return version


def _load_vocab(path, expected_size, side):
    vocab = text_lib.Vocabulary.load(path)
    if len(vocab) != expected_size:
        raise ValueError(f"{side} vocabulary {path} has {len(vocab)} tokens but the model's "
                         f"{side}_vocab_size is {expected_size}")
    return vocab


def _check_warmup_texts(texts):
    texts = _as_bytes([texts] if isinstance(texts, (str, bytes)) else texts)
    if not texts:
        raise ValueError("`warmup_texts` must hold at least one text")
    return texts


def _as_bytes(texts):
    return [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts]


def predict_request(texts, signature_name="serving_default", model_name="model"):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` with input ``text``."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    values = np.array(_as_bytes(texts), object)
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(values, tf.string, shape=[len(values)]))
    return request


def write_warmup_requests(saved_model_dir, texts, model_name="model", greedy_batches=()):
    """Writes one ``PredictionLog`` per signature to ``assets.extra/`` (TF Serving's
    warmup), then one ``serving_default`` request per batch of ``greedy_batches``."""
    path = os.path.join(saved_model_dir, WARMUP_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    requests = [(texts, name) for name in SIGNATURES]
    requests += [(batch, "serving_default") for batch in greedy_batches]
    with tf.io.TFRecordWriter(path) as writer:
        for batch, name in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(batch, name, model_name)))
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(saved_model_dir):
    """The ``PredictRequest``s of ``assets.extra/tf_serving_warmup_requests``, in order."""
    requests = []
    for record in tf.data.TFRecordDataset(os.path.join(saved_model_dir, WARMUP_PATH)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"unexpected warmup record type {log.WhichOneof('log_type')!r}")
        requests.append(log.predict_log.request)
    return requests


# op checks live in their own module; re-exported for callers of this one
from tfseq2seq.opcheck import FORBIDDEN_OPS, check_ops, op_names  # noqa: E402,F401
