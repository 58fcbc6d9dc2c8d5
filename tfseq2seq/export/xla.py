"""The XLA variant of the greedy signature, and the warm-up batches that make a server
compile its programs while loading.

XLA compiles one program per input shape, so requests are padded to a few shapes
(``XLA_LENGTH_MULTIPLE`` columns, power-of-two rows), and the exporter writes one warm-up
request per program (``xla_warmup_batches``).
"""

import keras
import tensorflow as tf

from tfseq2seq.decoding.greedy import greedy_decode
from tfseq2seq.decoding.options import default_max_length
from tfseq2seq.model import IDS_SPEC, SCALAR_SPEC

XLA_LENGTH_MULTIPLE = 8  # inputs are padded to a multiple of this many tokens
XLA_WARMUP_TOKENS = 32  # with no max_source_len, warm-up covers inputs up to this long


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
            return greedy_decode(
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
