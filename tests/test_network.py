"""The classifier network: loss, architectures, batch-norm folding, TF1-compatible ops."""

import numpy as np
import pytest
import tensorflow as tf

from focusnet.contract import INPUT_SCALE, PATCH_SIZE
from focusnet.network import (
    ARCHITECTURES,
    NUM_LEVELS,
    build_trainable,
    expected_weight_shapes,
    fold_inference_weights,
    get_architecture,
    inference_graph,
    preprocess,
    ranked_probability_score,
)

# Ops that TensorFlow 1.12 (Fiji's runtime) has and a classifier needs.
TF1_CLASSIFIER_OPS = {"Placeholder", "Const", "Identity", "Conv2D", "BiasAdd", "Relu", "MaxPool", "AvgPool", "Mean",
                      "Min", "Max", "Sub", "Add", "Mul", "Log", "Log1p", "MatMul", "Softmax", "Reshape", "NoOp"}


# The paper's 29 M-parameter network takes seconds per check: left to the full run.
ARCHITECTURE_PARAMS = [pytest.param(name, marks=pytest.mark.slow) if name == "paper" else name
                       for name in sorted(ARCHITECTURES)]


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
    architecture = ARCHITECTURES[name]
    model = build_trainable(architecture, seed=1)
    rng = np.random.default_rng(1)
    # Non-trivial batch-norm statistics, as after training.
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            size = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2, size))
            layer.beta.assign(rng.normal(0, 0.5, size))
            layer.moving_mean.assign(rng.normal(0, 0.5, size))
            layer.moving_variance.assign(rng.uniform(0.2, 3, size))
    patches = rng.uniform(100, 4000, size=(5, PATCH_SIZE, PATCH_SIZE, 1)).astype(np.float32) / INPUT_SCALE
    expected = model(patches, training=False).numpy()
    weights = fold_inference_weights(model, architecture)
    assert {k: v.shape for k, v in weights.items()} == expected_weight_shapes(architecture)
    folded = inference_graph(tf.constant(patches), weights, architecture).numpy()
    np.testing.assert_allclose(folded, expected, atol=2e-5)
    np.testing.assert_allclose(folded.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ARCHITECTURE_PARAMS)
def test_inference_graph_uses_only_tf1_classifier_ops(name):
    architecture = ARCHITECTURES[name]
    weights = {k: np.zeros(s, np.float32) for k, s in expected_weight_shapes(architecture).items()}
    function = tf.function(lambda x: inference_graph(x, weights, architecture)).get_concrete_function(
        tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32))
    ops = {op.type for op in function.graph.get_operations()}
    assert ops <= TF1_CLASSIFIER_OPS, ops - TF1_CLASSIFIER_OPS
