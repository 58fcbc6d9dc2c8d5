"""``run_layer_test``: the contract every layer of the package must keep, checked in one call.

For one layer class it checks, in order, and stops at the first failure:

1. ``layer_cls(**init_kwargs)`` + an explicit ``build(*build_shapes)`` creates the expected
   number of trainable / non-trainable weights, and calling the layer creates no more
   (weights created lazily in ``call`` are missed by ``build``-based restoring).
2. ``get_config`` round-trips: ``from_config(config).get_config() == config``, and the
   rebuilt layer, given the original's weights, computes the same outputs (state kept
   outside the config and the weights would be lost on reloading).
3. An eager call gives ``expected_output_shape`` (nested like the outputs: a tuple of
   ints/None is a shape, other lists/tuples/dicts are structure).
4. The same call inside ``tf.function``, with the batch dimension unknown (as in exported
   graphs), gives the same values.
5. One training step (``GradientTape`` + Adam on the mean square of the float outputs)
   gives a finite loss, a gradient for every trainable weight, and changes each of them
   (a weight that never reaches the outputs would silently stay untrained).
6. A ``keras.Model`` wrapping the layer, saved as ``.keras`` and reloaded with
   ``keras.models.load_model``, reproduces the outputs.

Layers whose call is not ``layer(inputs, training=training)`` (cells, attention, the
decoder, ...) pass ``call(layer, inputs, training) -> outputs``; nothing here knows classes.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def default_call(layer, inputs, training):
    return layer(inputs, training=training)


def run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape, call=None,
                   build_shapes=None, expected_num_trainable_weights=None,
                   expected_num_non_trainable_weights=0, atol=1e-5):
    """Runs checks 1-6 (module docstring) on ``layer_cls(**init_kwargs)``.

    Args:
        input_data: the (nested) inputs ``call`` receives; leaves are converted to tensors.
        call: ``(layer, inputs, training) -> outputs``; default ``layer(inputs, training=)``.
        build_shapes: positional arguments of ``build``; default the shape of each element
            of a tuple ``input_data``, or of ``input_data`` itself.
        expected_num_trainable_weights: default: at least one.
    """
    call, data = call or default_call, tf.nest.map_structure(tf.convert_to_tensor, input_data)
    if build_shapes is None:
        build_shapes = (tuple(_shapes(x) for x in data) if isinstance(data, tuple)
                        else (_shapes(data),))

    # 1. __init__ + build create the weights; calling creates no more.
    layer = layer_cls(**init_kwargs)
    layer.build(*build_shapes)
    assert layer.built, "build did not set built"
    n_train, n_frozen = len(layer.trainable_weights), len(layer.non_trainable_weights)
    assert (n_train > 0 if expected_num_trainable_weights is None
            else n_train == expected_num_trainable_weights), f"build made {n_train} trainable"
    assert n_frozen == expected_num_non_trainable_weights, f"build made {n_frozen} non-trainable"
    eager = call(layer, data, False)
    assert len(layer.weights) == n_train + n_frozen, "calling the layer created weights"

    # 2. get_config round-trips, and the rebuilt layer computes the same outputs.
    config, clone = layer.get_config(), layer_cls.from_config(layer.get_config())
    assert clone.get_config() == config, "from_config(get_config()).get_config() differs"
    clone.build(*build_shapes)
    clone.set_weights(layer.get_weights())
    _assert_close(call(clone, data, False), eager, atol, "layer rebuilt from its config")

    # 3. Eager output shapes.
    _assert_shapes(eager, expected_output_shape)

    # 4. Graph mode, batch dimension unknown.
    spec = tf.nest.map_structure(
        lambda t: tf.TensorSpec([None] + t.shape[1:].as_list(), t.dtype), data)
    graph_fn = tf.function(lambda x: call(layer, x, False), input_signature=[spec])
    _assert_close(graph_fn(data), eager, atol, "tf.function")

    # 5. One training step.
    variables = layer.trainable_variables
    before = [v.numpy().copy() for v in variables]
    with tf.GradientTape() as tape:
        outputs = tf.nest.flatten(call(layer, data, True))
        loss = tf.add_n([tf.reduce_mean(tf.square(t)) for t in outputs if t.dtype.is_floating])
    assert np.isfinite(loss.numpy()), f"training loss is {loss.numpy()}"
    if variables:
        grads = tape.gradient(loss, variables)
        missing = [v.path for v, g in zip(variables, grads) if g is None]
        assert not missing, f"no gradient for {missing}"
        # A tiny epsilon moves every weight with a nonzero gradient by about the learning
        # rate, however small the gradient (e.g. the query side of the concat score).
        keras.optimizers.Adam(0.01, epsilon=1e-12).apply(grads, variables)
        unchanged = [v.path for v, b in zip(variables, before) if np.array_equal(v.numpy(), b)]
        assert not unchanged, f"a training step left {unchanged} unchanged"

    # 6. .keras save / load of a wrapping model.
    expected = call(layer, data, False)
    with tempfile.TemporaryDirectory() as tmp:
        LayerModel(layer, build_shapes, call_fn=call).save(os.path.join(tmp, "m.keras"))
        restored = keras.models.load_model(os.path.join(tmp, "m.keras"))
    assert type(restored.layer) is layer_cls, f"reloaded as {type(restored.layer)}"
    assert restored.layer.get_config() == config, "config changed by saving"
    restored.call_fn = call
    _assert_close(restored(data), expected, atol, "reloaded .keras model")


@keras.saving.register_keras_serializable(package="tfseq2seq_tests")
class LayerModel(keras.Model):
    """A model around one layer; ``call_fn`` (not serialized) is reattached after loading."""

    def __init__(self, layer, build_shapes, call_fn=default_call, **kwargs):
        super().__init__(**kwargs)
        self.layer, self.build_shapes, self.call_fn = layer, _tuples(build_shapes), call_fn
        if not layer.built:  # a freshly deserialized layer: build it before weights load
            layer.build(*self.build_shapes)
        self.built = True

    def call(self, inputs, training=None):
        return self.call_fn(self.layer, inputs, training)

    def get_config(self):
        return {"name": self.name, "build_shapes": self.build_shapes,
                "layer": keras.saving.serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config, layer=keras.saving.deserialize_keras_object(config["layer"]))
        return cls(**config)


def _shapes(data):
    return tf.nest.map_structure(lambda t: tuple(t.shape), data)


def _tuples(x):
    """JSON turns shapes into lists; ``build`` methods get tuples back."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def _assert_shapes(actual, expected, where="outputs"):
    """A tuple of ints/None is a shape; other tuples, lists and dicts are structure."""
    if isinstance(expected, tuple) and all(d is None or isinstance(d, int) for d in expected):
        got = _shapes(actual)
        assert got == expected, f"{where}: got {got}, expected shape {expected}"
        return
    keys = sorted(expected) if isinstance(expected, dict) else range(len(expected))
    same = (isinstance(actual, dict) and sorted(actual) == keys if isinstance(expected, dict)
            else isinstance(actual, (list, tuple)) and len(actual) == len(expected))
    assert same, f"{where}: got {_shapes(actual)}, expected {expected}"
    for k in keys:
        _assert_shapes(actual[k], expected[k], f"{where}[{k!r}]")


def _assert_close(actual, expected, atol, what):
    tf.nest.assert_same_structure(actual, expected, check_types=False)
    for a, e in zip(tf.nest.flatten(actual), tf.nest.flatten(expected)):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
        np.testing.assert_allclose(a.astype("float64"), e.astype("float64"), rtol=1e-5,
                                   atol=atol, err_msg=what)
