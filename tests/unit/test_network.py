"""The classifier network: loss, architectures, batch-norm folding, TF1-compatible ops."""

import numpy as np
import pytest
import tensorflow as tf

from focusnet.contract import INPUT_SCALE, PATCH_SIZE
from focusnet.network import (
    ARCHITECTURES,
    NUM_LEVELS,
    expected_weight_shapes,
    get_architecture,
    preprocess,
    ranked_probability_score,
)
from helpers import check_folded_inference_graph, check_tf1_classifier_ops

# The paper's 29 M-parameter network takes seconds per check: tests/integration/test_network_paper.py.
ARCHITECTURE_PARAMS = [name for name in sorted(ARCHITECTURES) if name != "paper"]


def rps(levels, probabilities):
    return float(ranked_probability_score(tf.constant(levels), tf.constant(probabilities, tf.float32)))


def test_rps_is_zero_for_a_certain_correct_answer_and_grows_with_distance():
    one_hot = np.eye(NUM_LEVELS)
    assert rps([3], one_hot[[3]]) == pytest.approx(0.0, abs=1e-7)
    errors = [rps([3], one_hot[[predicted]]) for predicted in (3, 4, 6, 10)]
    assert errors == sorted(errors) and errors[1] > 0
    # Off by k levels with full confidence costs k / (K - 1).
    assert rps([0], one_hot[[10]]) == pytest.approx(1.0)
    assert rps([2], one_hot[[5]]) == pytest.approx(3 / 10)
    uniform = np.full((1, NUM_LEVELS), 1 / NUM_LEVELS)
    assert 0 < rps([5], uniform) < rps([0], uniform)


def test_paper_architecture_has_about_29_million_parameters():
    count = sum(int(np.prod(shape)) for shape in expected_weight_shapes(ARCHITECTURES["paper"]).values())
    assert 28e6 < count < 30e6


def test_default_architecture_weights_fit_in_5_mb():
    count = sum(int(np.prod(shape)) for shape in expected_weight_shapes(ARCHITECTURES["default"]).values())
    assert count * 4 <= 5e6


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture 'huge'"):
        get_architecture("huge")


def test_preprocessing_cancels_gain_and_offset():
    rng = np.random.default_rng(0)
    counts = rng.uniform(0, 3000, size=(4, PATCH_SIZE, PATCH_SIZE, 1))
    base = preprocess(tf.constant(counts / INPUT_SCALE, tf.float32)).numpy()
    scaled = preprocess(tf.constant((counts * 3.0 + 500) / INPUT_SCALE, tf.float32)).numpy()
    # log(1 + g (c - min)) differs from log(1 + c - min) by about log(g): removed by the mean.
    bright = (counts - counts.min(axis=(1, 2, 3), keepdims=True)) > 200
    np.testing.assert_allclose(scaled[bright], base[bright], atol=0.02)


@pytest.mark.parametrize("name", ARCHITECTURE_PARAMS)
def test_folded_inference_graph_matches_the_trained_network(name):
    check_folded_inference_graph(name)


@pytest.mark.parametrize("name", ARCHITECTURE_PARAMS)
def test_inference_graph_uses_only_tf1_classifier_ops(name):
    check_tf1_classifier_ops(name)
