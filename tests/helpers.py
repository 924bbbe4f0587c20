"""Helpers shared by tests of several tiers (tests/unit, tests/integration, tests/cellprofiler, tests/packaging).

Fixtures live in tests/conftest.py; plain functions that test modules import live here, so that no
test module imports another one.
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest

#: How far one patch's probabilities may differ between two runtimes (TensorFlow 2 and 1, onnxruntime): float32
#: summed in different orders. The shipped model's largest difference on the test images is 1.7e-5; a wrong layout,
#: scale or graph gives differences of 0.1.
RUNTIME_PATCH_TOLERANCE = 5e-5


def as_version_1(config):
    """A version-2 config written the way focusnet wrote version 1 (settings mixed into the run record)."""
    training = dict(config["training"])
    settings = training.pop("settings")
    return dict(config, format_version=1, training=dict(settings, **training))


def check_measure_focus_rows(rows, result, image_folder, focusnet_predict, out):
    """measure_focus.cppipe's table agrees with ``focusnet predict`` within 1e-5, and bad images are NaN rows."""
    from focusnet.contract import NUM_LEVELS
    from focusnet.figures import is_focusnet_overlay

    by_name = {row["FileName_DNA"]: row for row in rows}
    assert sorted(by_name) == sorted(p.name for p in image_folder.glob("*.tif"))  # every image has a row
    columns = ["DefocusLevel", "MeanCertainty", "AggregateCertainty", "PatchCount", "ContentFraction", "DefocusUm",
               "DefocusUmIsLowerBound", "PixelSizeUm"] + [f"ProbabilityLevel{k}" for k in range(NUM_LEVELS)]
    for name, row in by_name.items():
        expected = focusnet_predict[name]
        if name in ("tiny.tif", "constant.tif"):
            assert math.isnan(float(row["ImageFocus_DefocusLevel_DNA"]))
            assert math.isnan(float(row["ImageFocus_AggregateCertainty_DNA"]))
            assert int(float(row["ImageFocus_PatchCount_DNA"])) == 0
            assert name in result.stderr + result.stdout  # the warning names the image
            continue
        if name == "dark_field.tif":  # neither in focus nor out of focus: no content
            assert math.isnan(float(row["ImageFocus_DefocusLevel_DNA"]))
            assert float(row["ImageFocus_ContentFraction_DNA"]) == 0
            assert int(float(row["ImageFocus_PatchCount_DNA"])) == int(expected["patches"]) == 12
            assert re.search(r"dark_field\.tif.*: no content", result.stderr + result.stdout)
            continue
        for column in columns:
            source = {"DefocusLevel": "defocus_level", "MeanCertainty": "mean_certainty",
                      "AggregateCertainty": "aggregate_certainty", "PatchCount": "patches",
                      "ContentFraction": "content_fraction", "DefocusUm": "defocus_um",
                      "DefocusUmIsLowerBound": "defocus_um_lower_bound", "PixelSizeUm": "pixel_size_um"}.get(
                column, "prob_" + column.replace("ProbabilityLevel", ""))
            assert float(row[f"ImageFocus_{column}_DNA"]) == pytest.approx(float(expected[source]), abs=1e-5), column
        overlay = out / (Path(name).stem + "_focus.png")  # saved whole by the module, marked as focusnet's
        assert overlay.is_file() and is_focusnet_overlay(overlay)
    levels = {name: float(row["ImageFocus_DefocusLevel_DNA"]) for name, row in by_name.items()}
    assert all(level <= 1 for name, level in levels.items() if name.startswith("BBBC006"))
    assert all(level >= 3 for name, level in levels.items() if name.startswith("MCF7"))


# Ops that TensorFlow 1.12 (Fiji's runtime) has and a classifier needs.
TF1_CLASSIFIER_OPS = {"Placeholder", "Const", "Identity", "Conv2D", "BiasAdd", "Relu", "MaxPool", "AvgPool", "Mean",
                      "Min", "Max", "Sub", "Add", "Mul", "Log", "Log1p", "MatMul", "Softmax", "Reshape", "NoOp"}


def check_folded_inference_graph(name):
    """Batch-norm folding: the inference graph of ``name``'s architecture computes what the trained network does."""
    import tensorflow as tf

    from focusnet.contract import INPUT_SCALE, PATCH_SIZE
    from focusnet.network import (
        ARCHITECTURES,
        build_trainable,
        expected_weight_shapes,
        fold_inference_weights,
        inference_graph,
    )

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


def check_tf1_classifier_ops(name):
    """The inference graph of ``name``'s architecture uses only ops that Fiji's TensorFlow 1.12 has."""
    import tensorflow as tf

    from focusnet.contract import PATCH_SIZE
    from focusnet.network import ARCHITECTURES, expected_weight_shapes, inference_graph

    architecture = ARCHITECTURES[name]
    weights = {k: np.zeros(s, np.float32) for k, s in expected_weight_shapes(architecture).items()}
    function = tf.function(lambda x: inference_graph(x, weights, architecture)).get_concrete_function(
        tf.TensorSpec([None, PATCH_SIZE, PATCH_SIZE, 1], tf.float32))
    ops = {op.type for op in function.graph.get_operations()}
    assert ops <= TF1_CLASSIFIER_OPS, ops - TF1_CLASSIFIER_OPS


def flip_each_byte(path, positions):
    """The zipped bundle at ``path`` with each byte of ``positions`` flipped in turn, through the loader.

    Returns how many flips were refused (BundleError) and, for each flip that loaded, its position and
    whether its files are the original's. Any other exception escapes. tests/integration/test_export.py
    runs this in several processes at once, each on its share of the positions.
    """
    from focusnet.bundle import bundle_from_files, read_zip
    from focusnet.errors import BundleError

    original = Path(path).read_bytes()
    original_files = read_zip(original, "original")
    refused, loaded = 0, []
    for position in positions:
        data = bytearray(original)
        data[position] ^= 0xFF
        try:
            files = read_zip(bytes(data), f"flip at {position}")
            bundle_from_files(files, f"flip at {position}")
        except BundleError:
            refused += 1
            continue
        loaded.append((position, files == original_files))
    return refused, loaded
