"""TensorFlow's thread pools for serving: TF Serving's ``--tensorflow_intra_op_parallelism``
and ``--tensorflow_inter_op_parallelism``.

Intra-op threads split one op (a matmul, an elementwise op) across cores; inter-op
threads run independent ops at once. ``0`` leaves the choice to TensorFlow (one thread
per core for both). A recurrent model decoding a few words per call runs hundreds of
small ops in sequence, and splitting each of them across cores costs more in thread
hand-offs than it saves: on the 2-core benchmark machine ``intra_op=1`` takes ~30 % off
a batch-1 call of the default export and raises one-at-a-time serving throughput
1.6–2.2× (``benchmarks/RESULTS.md``, run 4); batches of hundreds of rows gain nothing,
and the XLA export loses there.
The pools are made when TensorFlow first runs something, so this must come first.
"""

import tensorflow as tf

FLAGS = ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism")


def configure_threads(intra_op=0, inter_op=0):
    """Sizes TensorFlow's intra-op / inter-op thread pools (``0`` or ``None``: unchanged,
    i.e. TensorFlow's choice unless set before). Raises ``ValueError`` for a negative
    count, or when TensorFlow already runs in this process with other pool sizes."""
    setters = (tf.config.threading.set_intra_op_parallelism_threads,
               tf.config.threading.set_inter_op_parallelism_threads)
    getters = (tf.config.threading.get_intra_op_parallelism_threads,
               tf.config.threading.get_inter_op_parallelism_threads)
    for flag, value in zip(FLAGS, (intra_op, inter_op)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ValueError(f"{flag} must be an integer >= 0, got {value!r}")
    for flag, value, setter, getter in zip(FLAGS, (intra_op, inter_op), setters, getters):
        if not value:
            continue
        try:
            setter(value)
        except RuntimeError:
            raise ValueError(
                f"{flag}={value} cannot take effect: TensorFlow already runs in this process "
                f"with {getter() or 'its default'} threads; set it before anything else "
                f"runs TensorFlow (e.g. as a server flag)") from None


def describe_threads():
    """``"intra-op=N inter-op=M"`` as configured (``auto``: TensorFlow's choice)."""
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return f"intra-op={intra or 'auto'} inter-op={inter or 'auto'}"
