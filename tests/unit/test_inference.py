"""Whole-image inference: tiling, certainty, aggregation and input checks."""

import math

import numpy as np
import pytest

from focusnet.contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from focusnet.images import ImageFormatError
from focusnet.inference import (
    PATCHES_PER_STEP,
    UnmeasurableImageError,
    aggregate,
    certainty,
    predict_image,
    tile_starts,
    to_counts,
)
from focusnet.loader import load_model


@pytest.fixture(scope="module")
def model(random_model_dir):
    return load_model(random_model_dir)


def test_tiles_spread_leftover_pixels_as_fiji_does():
    # 696 = 8 * 84 + 24: tile i starts at i*84 + (i+1)*24 // 9.
    np.testing.assert_array_equal(tile_starts(696), [i * PATCH_SIZE + (i + 1) * 24 // 9 for i in range(8)])
    assert list(tile_starts(696)[:3]) == [2, 89, 176]
    assert list(tile_starts(168)) == [0, PATCH_SIZE]
    assert list(tile_starts(PATCH_SIZE)) == [0]
    assert len(tile_starts(83)) == 0
    for size in (PATCH_SIZE, 100, 520, 696, 1000, 2048):
        starts = tile_starts(size)
        assert len(starts) == size // PATCH_SIZE
        # Gaps before, between and after the tiles: never negative (no overlap),
        # and spread evenly (they differ by at most one pixel).
        ends = starts + PATCH_SIZE
        gaps = np.concatenate([[starts[0]], starts[1:] - ends[:-1], [size - ends[-1]]])
        assert gaps.min() >= 0 and gaps.max() - gaps.min() <= 1, (size, gaps)


def test_certainty_is_one_minus_normalised_entropy():
    assert certainty(np.eye(NUM_LEVELS)[4]) == pytest.approx(1.0)
    assert certainty(np.full(NUM_LEVELS, 1 / NUM_LEVELS)) == pytest.approx(0.0, abs=1e-12)
    two = np.zeros(NUM_LEVELS)
    two[[2, 3]] = 0.5
    assert certainty(two) == pytest.approx(1 - math.log(2) / math.log(NUM_LEVELS))


def test_aggregate_weights_patches_by_certainty():
    sure = np.eye(NUM_LEVELS)[7]
    unsure = np.full(NUM_LEVELS, 1 / NUM_LEVELS)
    half = np.zeros(NUM_LEVELS)
    half[[1, 2]] = 0.5
    probabilities = np.stack([sure, unsure, half]).reshape(1, 3, NUM_LEVELS)
    result = aggregate(probabilities, [0], [0, PATCH_SIZE, 168])
    c_half = 1 - math.log(2) / math.log(NUM_LEVELS)
    expected = (1.0 * sure + 0.0 * unsure + c_half * half) / (1.0 + c_half)
    np.testing.assert_allclose(result.distribution, expected)
    assert result.defocus_level == 7
    assert result.mean_certainty == pytest.approx((1 + 0 + c_half) / 3)
    assert result.aggregate_certainty == pytest.approx(certainty(expected))


def test_prediction_of_a_real_image(model, in_focus_image):
    prediction = predict_image(in_focus_image, model)
    assert prediction.probabilities.shape == (6, 8, NUM_LEVELS)
    assert prediction.num_patches == 48
    np.testing.assert_array_equal(prediction.x, tile_starts(696))
    np.testing.assert_array_equal(prediction.y, tile_starts(520))
    np.testing.assert_allclose(prediction.distribution.sum(), 1.0, atol=1e-6)
    # Patches are predicted where the tiling says they are.
    y, x = prediction.y[2], prediction.x[5]
    alone = model.predict_patches(in_focus_image[None, y:y + PATCH_SIZE, x:x + PATCH_SIZE] / INPUT_SCALE)[0]
    np.testing.assert_allclose(prediction.probabilities[2, 5], alone, atol=1e-6)
    rows = list(prediction.patch_rows())
    assert len(rows) == 48 and (rows[9]["row"], rows[9]["col"]) == (1, 1)


def test_an_image_of_several_steps_equals_one_call_on_all_its_patches(model, in_focus_image):
    # 9 x 9 tiles: more patches than one step, so the last step is a partial one.
    image = np.tile(in_focus_image, (2, 2))[:PATCH_SIZE * 9 + 50, :PATCH_SIZE * 9 + 20]
    assert 9 * 9 > PATCHES_PER_STEP
    prediction = predict_image(image, model)
    positions = [(y, x) for y in prediction.y for x in prediction.x]
    every_patch = np.stack([image[y:y + PATCH_SIZE, x:x + PATCH_SIZE] for y, x in positions]) / INPUT_SCALE
    expected = model.predict_patches(every_patch, batch_size=len(positions))
    np.testing.assert_allclose(prediction.probabilities.reshape(-1, NUM_LEVELS), expected, atol=1e-6)


def test_float_images_with_a_scale_give_the_same_answer(model, in_focus_image):
    expected = predict_image(in_focus_image, model)
    as_float = predict_image(in_focus_image / INPUT_SCALE, model, scale=INPUT_SCALE)
    np.testing.assert_allclose(as_float.probabilities, expected.probabilities, atol=1e-6)
    # 12-bit data: CellProfiler-style floats in [0, 1] scaled by 4095.
    twelve_bit = (in_focus_image.astype(float) / in_focus_image.max() * 4095).round()
    counts = predict_image(twelve_bit.astype(np.uint16), model)
    scaled = predict_image(twelve_bit / 4095, model, scale=4095)
    np.testing.assert_allclose(scaled.probabilities, counts.probabilities, atol=1e-6)


@pytest.mark.parametrize(
    "image,scale,error,match",
    [
        (np.ones((83, 200), np.uint16) * np.arange(200, dtype=np.uint16), None, UnmeasurableImageError,
         "smaller than one 84x84 patch"),
        (np.full((100, 100), 7, np.uint16), None, UnmeasurableImageError, "constant image"),
        (np.full((100, 100), np.nan), INPUT_SCALE, ImageFormatError, "NaN or infinite"),
        (np.random.default_rng(0).random((100, 100)), None, ImageFormatError, "explicit scale"),
        (np.random.default_rng(0).random((100, 100)) * 3, INPUT_SCALE, ImageFormatError, r"must lie in \[0, 1\]"),
        (np.zeros((100, 100, 3), np.uint16), None, ImageFormatError, "RGB"),
        (np.zeros((4, 100, 100), np.uint16), None, ImageFormatError, "multi-plane"),
        (np.full((100, 100), -5, np.int32), None, ImageFormatError, r"raw counts in \[0, 65535\]"),
        (np.arange(10000, dtype=np.uint32).reshape(100, 100) * 7, None, ImageFormatError, r"found \[0, 69993\]"),
    ],
)
def test_bad_input_is_refused_clearly(model, image, scale, error, match):
    with pytest.raises(error, match=match):
        predict_image(image, model, scale=scale, name="sample.tif")


def test_to_counts_names_the_image():
    with pytest.raises(ImageFormatError, match="plate1_A01.tif"):
        to_counts(np.zeros((10, 10, 3)), name="plate1_A01.tif")
