"""``Seq2Seq``: encoder + attentional decoder, trained with scheduled sampling in ``fit``."""

import keras
import numpy as np
import tensorflow as tf

from tfseq2seq.decoder import Decoder
from tfseq2seq.decoding.beam import beam_search
from tfseq2seq.decoding.greedy import greedy_decode
from tfseq2seq.decoding.loops import tile_beams
from tfseq2seq.decoding.options import DecodingOptions, default_max_length  # noqa: F401
from tfseq2seq.encoder import Encoder
from tfseq2seq.losses import MaskedCrossEntropy
from tfseq2seq.schedules import ScheduledSampling
from tfseq2seq.util.checks import require_nonnegative_number, require_positive_int

IDS_SPEC = tf.TensorSpec([None, None], tf.int32)
SCALAR_SPEC = tf.TensorSpec([], tf.int32)
# Greedy decoding drops ended rows once half of the rows still decoded have ended.
COMPACT_FRACTION = 0.5


@keras.saving.register_keras_serializable(package="tfseq2seq")
class Seq2Seq(keras.Model):
    """A recurrent sequence-to-sequence model with Luong attention.

    Inputs are 0-padded id matrices: ``source_ids [batch, src_len]``,
    ``target_in_ids [batch, tgt_len]`` (starting with ``start_id``); ``fit`` targets are
    ``target_out_ids [batch, tgt_len]`` (ending with ``end_id``). ``call`` returns logits
    ``[batch, tgt_len, target_vocab_size]``.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes (id 0 is padding).
        embedding_dim, units: embedding and recurrent sizes.
        cell: ``"elman"``, ``"gru"`` or ``"lstm"``; activation: the Elman cell's
            (``"tanh"``, ``"identity"``, ``"relu"``, ``"sigmoid"``, ``"hard_tanh"``).
        encoder_layers, decoder_layers: depths (``decoder_layers`` defaults to the encoder's).
        bidirectional, bidirectional_merge: see ``Encoder`` (``"sum"`` or ``"concat"``).
        attention: ``"dot"``, ``"general"``, ``"concat"`` or ``None`` (no attention).
        attention_units: hidden size of the ``concat`` score.
        one_hot_inputs: feed one-hot vectors (fixed identity embedding matrices, of the
            vocabulary's size) instead of learned embeddings; ``embedding_dim`` is unused.
        attention_timing: ``"luong"`` (``c_t`` from ``h_t``) or ``"bahdanau"`` (from
            ``h_{t-1}``, fed into the recurrent step); see ``Decoder``.
        combine: ``"concat"``, ``"add"`` or ``"mlp"``; input_feeding: feed ``h̃_{t-1}``.
        dropout: rate on embeddings, between layers and before the output layer.
        sampling: a ``ScheduledSampling`` (or its config dict), or ``None`` for pure
            teacher forcing.
        start_id, end_id: ids of ``<start>`` and ``<end>``.
        source_embedding_matrix, target_embedding_matrix, trainable_embeddings:
            optional pretrained embeddings.
        seed: seed of the sampling decisions.
    """

    def __init__(self, source_vocab_size, target_vocab_size, embedding_dim=64, units=256,
                 cell="gru", encoder_layers=1, decoder_layers=None, bidirectional=False,
                 bidirectional_merge="sum", attention="general", attention_units=None,
                 combine="concat", input_feeding=False, dropout=0.0, sampling=None,
                 start_id=1, end_id=2, source_embedding_matrix=None,
                 target_embedding_matrix=None, trainable_embeddings=True, seed=None,
                 activation="tanh", attention_timing="luong", one_hot_inputs=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(sampling, dict):
            sampling = ScheduledSampling.from_config(sampling)
        if sampling is not None and not isinstance(sampling, ScheduledSampling):
            raise ValueError(f"`sampling` must be a ScheduledSampling or None, got {sampling!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}")
        for name, value in (("start_id", start_id), ("end_id", end_id)):
            if not 0 < value < target_vocab_size:
                raise ValueError(f"`{name}`={value} must be in [1, target_vocab_size={target_vocab_size})")
        self.sampling = sampling
        self.start_id, self.end_id = int(start_id), int(end_id)
        self.seed = seed
        self.embedding_dim, self.one_hot_inputs = embedding_dim, bool(one_hot_inputs)
        if self.one_hot_inputs:  # fixed identity matrices: x_t is the one-hot vector of y_t
            if source_embedding_matrix is not None or target_embedding_matrix is not None:
                raise ValueError("`one_hot_inputs` and pretrained embedding matrices exclude "
                                 "each other")
            source_embedding_matrix = np.eye(source_vocab_size, dtype="float32")
            target_embedding_matrix = np.eye(target_vocab_size, dtype="float32")
        self.trainable_embeddings = bool(trainable_embeddings)
        trainable = self.trainable_embeddings and not self.one_hot_inputs
        self.encoder = Encoder(
            source_vocab_size, source_vocab_size if self.one_hot_inputs else embedding_dim,
            units, cell, encoder_layers, bidirectional, bidirectional_merge, dropout,
            source_embedding_matrix, trainable, activation=activation, name="encoder")
        self.decoder = Decoder(
            target_vocab_size, target_vocab_size if self.one_hot_inputs else embedding_dim,
            units, cell, require_positive_int("decoder_layers", decoder_layers or encoder_layers),
            attention, attention_units, combine, input_feeding, dropout,
            target_embedding_matrix, trainable, activation=activation,
            attention_timing=attention_timing, name="decoder")
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        self.teacher_forcing_p = keras.metrics.Mean(name="teacher_forcing_p")
        self.encoder.build()
        self.decoder.build()
        self.built = True
        self._graph_fns = {}

    @property
    def source_vocab_size(self):
        return self.encoder.embedding.vocab_size

    @property
    def target_vocab_size(self):
        return self.decoder.vocab_size

    # ----------------------------------------------------------------- training
    def compile(self, optimizer="adam", loss=None, **kwargs):
        """Like ``keras.Model.compile``; the default loss is the padding-masked
        token-level cross-entropy (``MaskedCrossEntropy``)."""
        super().compile(optimizer=optimizer, loss=loss or MaskedCrossEntropy(), **kwargs)

    def compile_from_config(self, config):
        """Re-compiles a loaded model (so ``.keras`` files keep their optimizer state)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=None):
        """Logits ``[batch, tgt_len, vocab]`` for ``(source_ids, target_in_ids)``.

        A third input, a scalar teacher-forcing probability, switches to scheduled
        sampling; ``train_step`` supplies it, users normally don't.
        """
        source_ids, target_in_ids, teacher_forcing_p = _unpack_inputs(inputs)
        source_ids, target_in_ids = _as_ids(source_ids, "source_ids"), _as_ids(target_in_ids, "target_in_ids")
        tf.debugging.assert_equal(
            tf.shape(source_ids)[0], tf.shape(target_in_ids)[0],
            message="source_ids and target_in_ids have different batch sizes")
        memory, mask, state = self.encode(source_ids, training)
        if teacher_forcing_p is None:
            return self.decoder.teacher_forced(target_in_ids, state, memory, mask, training)
        return self.decoder.scheduled(
            target_in_ids, state, memory, mask, teacher_forcing_p,
            sample=self.sampling is not None and self.sampling.mode == "sample",
            seed=self.seed_generator, training=training)

    def train_step(self, data):
        """Keras' train step with the teacher-forcing probability ``ε`` added as an input.

        ``ε`` is computed here, in the compiled graph, from ``optimizer.iterations``, and
        reported as the ``teacher_forcing_p`` metric.
        """
        if self.sampling is None or self.sampling.always_teacher_forcing:
            self.teacher_forcing_p.update_state(1.0)
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        p = self.sampling.probability(self.optimizer.iterations)
        self.teacher_forcing_p.update_state(p)
        source_ids, target_in_ids, _ = _unpack_inputs(x)
        return super().train_step(
            keras.utils.pack_x_y_sample_weight((source_ids, target_in_ids, p), y, sample_weight))

    def test_step(self, data):
        self.teacher_forcing_p.update_state(1.0)  # evaluation is always teacher-forced
        return super().test_step(data)

    # ----------------------------------------------------------------- decoding
    def encode(self, source_ids, training=False, fixed_shapes=False):
        """``(memory, mask, initial decoder state)`` for int32 ``source_ids [batch, src_len]``
        (graph-compatible; what every decoding path starts from). ``fixed_shapes``: for
        XLA (see ``Encoder``)."""
        outputs, states, mask = self.encoder(source_ids, training=training,
                                             fixed_shapes=fixed_shapes)
        return (self.decoder.prepare_memory(outputs, states), mask,
                self.decoder.initial_state(states))

    def step_fn(self, memory=None, mask=None):
        """The decoder step as the decode loops expect it: ``step(ids, state)`` with the
        memory closed over, or, without ``memory``, ``step(ids, state, (memory, mask))``
        (greedy decoding carries the memory so it can drop ended rows).

        ``<pad>`` and ``<start>`` are never valid outputs, so decoding gives them no
        probability (their logits are pushed to -1e9 before the softmax).
        """
        banned = -1e9 * tf.reduce_sum(
            tf.one_hot([0, self.start_id], self.target_vocab_size), axis=0)
        table = self.decoder.input_table()  # once per decode call, not per step

        def step(ids, state, constants=(memory, mask)):
            logits, state, attention = self.decoder.step(
                ids, state, constants[0], constants[1], input_table=table)
            return logits + banned, state, attention

        return step

    def greedy_graph(self, source_ids, max_length):
        """Greedy decoding as graph-compatible TF ops (used by ``greedy_decode`` and export);
        rows that have ended are dropped as the batch goes (``COMPACT_FRACTION``)."""
        memory, mask, state = self.encode(source_ids)
        return greedy_decode(
            self.step_fn(), state, tf.shape(source_ids)[0], tf.shape(source_ids)[1],
            max_length, self.start_id, self.end_id, constants=(memory, mask),
            compact_fraction=COMPACT_FRACTION)

    def beam_graph(self, source_ids, max_length, beam_width, length_penalty):
        """Beam search as graph-compatible TF ops (used by ``beam_search`` and export)."""
        memory, mask, state = self.encode(source_ids)
        memory, mask = tile_beams((memory, mask), beam_width)
        return beam_search(
            self.step_fn(memory, mask), state, tf.shape(source_ids)[0], tf.shape(source_ids)[1],
            max_length, beam_width, length_penalty, self.start_id, self.end_id)

    def greedy_decode(self, source_ids, max_length=None):
        """Greedy decoding of ``source_ids [batch, src_len]``.

        Returns a dict: ``token_ids [batch, out_len]`` (without ``<end>``, 0-padded),
        ``lengths [batch]``, ``scores [batch]`` (sum of log-probabilities including
        ``<end>``), ``attention [batch, out_len, src_len]``. ``max_length`` defaults to
        ``default_max_length(src_len)``.
        """
        source_ids, max_length = self._check_decode_args(source_ids, max_length)
        fn = self._compiled("greedy", self.greedy_graph, [IDS_SPEC, SCALAR_SPEC])
        return _to_numpy(fn(source_ids, max_length))

    def beam_search(self, source_ids, beam_width=None, length_penalty=None, max_length=None):
        """Beam search with the GNMT length penalty ``((5 + len) / 6) ** length_penalty``.

        ``beam_width`` and ``length_penalty`` default to ``DecodingOptions``'. Returns the
        same keys as ``greedy_decode`` for the best hypothesis, plus
        ``beam_token_ids [batch, beam, out_len]`` and ``beam_scores [batch, beam]``.
        """
        options = DecodingOptions().replace(beam_width=beam_width, length_penalty=length_penalty)
        beam_width = require_positive_int("beam_width", options.beam_width)
        length_penalty = require_nonnegative_number("length_penalty", options.length_penalty)
        source_ids, max_length = self._check_decode_args(source_ids, max_length)
        key = ("beam", beam_width, float(length_penalty))
        fn = self._compiled(
            key, lambda s, m: self.beam_graph(s, m, beam_width, float(length_penalty)),
            [IDS_SPEC, SCALAR_SPEC])
        return _to_numpy(fn(source_ids, max_length))

    def _compiled(self, key, fn, signature):
        if key not in self._graph_fns:
            self._graph_fns[key] = tf.function(fn, input_signature=signature)
        return self._graph_fns[key]

    def _check_decode_args(self, source_ids, max_length):
        source_ids = check_source_ids(source_ids, self.source_vocab_size)
        if max_length is None:
            max_length = default_max_length(source_ids.shape[1])
        return source_ids, tf.constant(require_positive_int("max_length", max_length), tf.int32)

    # ----------------------------------------------------------------- config
    def get_config(self):
        enc, dec = self.encoder, self.decoder
        return {
            "name": self.name, "trainable": self.trainable,
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "embedding_dim": self.embedding_dim, "one_hot_inputs": self.one_hot_inputs,
            "units": enc.units, "cell": enc.cell_type,
            "activation": enc.activation,
            "encoder_layers": enc.num_layers, "decoder_layers": dec.num_layers,
            "bidirectional": enc.bidirectional, "bidirectional_merge": enc.merge,
            "attention": dec.attention_score, "attention_units": dec.attention_units,
            "attention_timing": dec.attention_timing,
            "combine": dec.combiner.combine, "input_feeding": dec.input_feeding,
            "dropout": enc.dropout_rate,
            "sampling": self.sampling.get_config() if self.sampling else None,
            "start_id": self.start_id, "end_id": self.end_id,
            "trainable_embeddings": self.trainable_embeddings,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_source_ids(source_ids, vocab_size, name="source_ids"):
    """Validates a concrete id matrix and returns it as an int32 tensor."""
    if isinstance(source_ids, tf.Tensor) and not tf.executing_eagerly():
        raise ValueError(f"`{name}` must be a concrete array; call greedy_graph inside tf.function")
    array = np.asarray(source_ids)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must have rank 2 [batch, src_len], got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integer ids, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= vocab_size):
        bad = array.max() if array.max() >= vocab_size else array.min()
        raise ValueError(f"`{name}` contains id {bad}, outside [0, {vocab_size})")
    if array.shape[1] == 0:  # no tokens at all: one padding column, so shapes stay defined
        array = np.zeros((array.shape[0], 1), np.int32)
    return tf.constant(array.astype(np.int32).reshape(array.shape))


def _unpack_inputs(inputs):
    if not isinstance(inputs, (tuple, list)) or len(inputs) not in (2, 3):
        raise ValueError(
            "Seq2Seq expects inputs (source_ids, target_in_ids); got "
            f"{type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (tuple, list)) else '?'}")
    return inputs[0], inputs[1], inputs[2] if len(inputs) == 3 else None


def _as_ids(ids, name):
    ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise ValueError(f"`{name}` must hold integer ids, got dtype {ids.dtype.name}")
    if ids.shape.rank != 2:
        raise ValueError(f"`{name}` must have rank 2 [batch, length], got shape {ids.shape}")
    return tf.cast(ids, tf.int32)


def _to_numpy(outputs):
    return {k: v.numpy() for k, v in outputs.items()}


def load_model(path, **kwargs):
    """Loads a ``.keras`` file saved from a ``Seq2Seq`` (same as ``keras.models.load_model``)."""
    return keras.models.load_model(path, **kwargs)
