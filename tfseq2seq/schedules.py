"""Scheduled sampling (Bengio et al., 2015): how often the decoder sees the ground truth.

``ε_i`` is the probability, at training step ``i``, of feeding the ground-truth previous
token instead of the model's own prediction. The schedule functions are pure: they map a
step (a Python number or a scalar tensor, e.g. ``optimizer.iterations``) to ``ε_i`` and
are evaluated inside the compiled train step, so nothing is frozen into the graph.
"""

import keras
import tensorflow as tf

from tfseq2seq.util.checks import require_choice, require_probability

MODES = ("argmax", "sample")


def constant(step, p=1.0):
    """``ε_i = p``."""
    return tf.fill(tf.shape(_as_float(step)), tf.constant(p, tf.float32))


def linear(step, start=1.0, end=0.0, steps=10000):
    """``ε_i`` moves linearly from ``start`` to ``end`` over ``steps`` steps, then stays."""
    frac = tf.clip_by_value(_as_float(step) / float(steps), 0.0, 1.0)
    return start + (end - start) * frac


def exponential(step, k=0.9999):
    """``ε_i = k^i`` with ``0 < k < 1``."""
    return tf.pow(tf.constant(k, tf.float32), _as_float(step))


def inverse_sigmoid(step, k=1000.0):
    """``ε_i = k / (k + exp(i / k))`` with ``k >= 1``."""
    # Written as a sigmoid so that large steps give 0 instead of inf/inf = nan.
    return tf.sigmoid(tf.math.log(k) - _as_float(step) / k)


SCHEDULES = {"constant": constant, "linear": linear,
             "exponential": exponential, "inverse_sigmoid": inverse_sigmoid}


def _as_float(step):
    return tf.cast(tf.convert_to_tensor(step), tf.float32)


def _validate(schedule, params):
    if schedule == "constant":
        require_probability("p", params.get("p", 1.0))
    elif schedule == "linear":
        require_probability("start", params.get("start", 1.0))
        require_probability("end", params.get("end", 0.0))
        _require_positive("steps", params.get("steps", 10000))
    elif schedule == "exponential":
        k = params.get("k", 0.9999)
        if not isinstance(k, (int, float)) or not 0.0 < k < 1.0:
            raise ValueError(f"exponential schedule needs 0 < k < 1, got k={k!r}")
    elif schedule == "inverse_sigmoid":
        k = params.get("k", 1000.0)
        if not isinstance(k, (int, float)) or k < 1.0:
            raise ValueError(f"inverse_sigmoid schedule needs k >= 1, got k={k!r}")


def _require_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}")


@keras.saving.register_keras_serializable(package="tfseq2seq")
class ScheduledSampling:
    """A schedule for ``ε`` plus how the model's own token is chosen.

    Args:
        schedule: ``"constant"``, ``"linear"``, ``"exponential"`` or ``"inverse_sigmoid"``.
        mode: ``"argmax"`` feeds the most likely token, ``"sample"`` draws from the softmax.
        **params: the schedule's parameters (``p``; ``start``, ``end``, ``steps``; ``k``).

    Example: ``ScheduledSampling("inverse_sigmoid", k=2000.0)``.
    """

    def __init__(self, schedule="inverse_sigmoid", mode="argmax", **params):
        self.schedule = require_choice("schedule", schedule, tuple(SCHEDULES))
        self.mode = require_choice("mode", mode, MODES)
        fn = SCHEDULES[schedule]
        allowed = set(fn.__code__.co_varnames[1:fn.__code__.co_argcount])
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for schedule {schedule!r}; "
                f"it takes {sorted(allowed)}")
        _validate(schedule, params)
        self.params = dict(params)

    @property
    def always_teacher_forcing(self):
        """True when ε is 1 at every step (``constant`` with ``p=1``): training then takes
        the teacher-forcing path, which computes the same as scheduled sampling with ε = 1
        (every fed token is the truth), without choosing tokens step by step."""
        return self.schedule == "constant" and float(self.params.get("p", 1.0)) >= 1.0

    def probability(self, step):
        """``ε`` at ``step`` as a float32 tensor (the probability of teacher forcing)."""
        return SCHEDULES[self.schedule](step, **self.params)

    def get_config(self):
        return {"schedule": self.schedule, "mode": self.mode, **self.params}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"ScheduledSampling({self.schedule!r}, mode={self.mode!r}{', ' if args else ''}{args})"
