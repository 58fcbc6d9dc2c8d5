import math

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq import schedules
from tfseq2seq.schedules import ScheduledSampling


def test_inverse_sigmoid_matches_bengio_formula():
    k = 2000.0
    for step in [0, 1, 500, 2000, 10000, 20000]:
        expected = k / (k + math.exp(step / k))
        assert float(schedules.inverse_sigmoid(step, k)) == pytest.approx(expected, rel=1e-5)
    # no overflow to nan far into training
    assert float(schedules.inverse_sigmoid(10**9, 10.0)) == 0.0


def test_linear_exponential_constant():
    assert float(schedules.linear(0, 1.0, 0.2, 100)) == pytest.approx(1.0)
    assert float(schedules.linear(50, 1.0, 0.2, 100)) == pytest.approx(0.6)
    assert float(schedules.linear(1000, 1.0, 0.2, 100)) == pytest.approx(0.2)
    assert float(schedules.exponential(10, 0.9)) == pytest.approx(0.9**10, rel=1e-5)
    assert float(schedules.constant(123, 0.3)) == pytest.approx(0.3)


@pytest.mark.parametrize("name,params", [
    ("inverse_sigmoid", {"k": 50.0}), ("linear", {"steps": 300}), ("exponential", {"k": 0.99})])
def test_decaying_schedules_are_monotone_in_unit_interval(name, params):
    values = [float(ScheduledSampling(name, **params).probability(s)) for s in range(0, 2000, 37)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a >= b for a, b in zip(values, values[1:])) and values[0] > values[-1]


def test_probability_of_a_variable_is_traced_not_frozen():
    step = tf.Variable(0, dtype=tf.int64)
    sampling = ScheduledSampling("linear", start=1.0, end=0.0, steps=10)
    fn = tf.function(lambda: sampling.probability(step))
    first = float(fn())
    step.assign(5)
    assert first == 1.0 and float(fn()) == pytest.approx(0.5)


def test_validation_and_config():
    with pytest.raises(ValueError, match="schedule"):
        ScheduledSampling("cosine")
    with pytest.raises(ValueError, match="unknown parameter"):
        ScheduledSampling("inverse_sigmoid", steps=3)
    with pytest.raises(ValueError, match="k >= 1"):
        ScheduledSampling("inverse_sigmoid", k=0.5)
    with pytest.raises(ValueError, match="0 < k < 1"):
        ScheduledSampling("exponential", k=1.5)
    with pytest.raises(ValueError, match="mode"):
        ScheduledSampling("constant", mode="beam")
    s = ScheduledSampling("linear", mode="sample", start=0.9, end=0.1, steps=7)
    clone = ScheduledSampling.from_config(s.get_config())
    assert clone.get_config() == s.get_config()
    np.testing.assert_allclose(clone.probability(3), s.probability(3))
