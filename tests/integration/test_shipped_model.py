"""The model shipped with focusnet, on images it was not trained on.

Properties that must hold without any tuning: the predicted level grows with
simulated blur, a camera's gain and offset barely matter, real sharp images
are called in focus and real out-of-focus images out of focus.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from focusnet.contract import NUM_LEVELS, PATCH_SIZE
from focusnet.contract import SHIPPED_MODEL_DIR as DEFAULT_MODEL_DIR
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.simulate import AS_IMAGED, CAMERA_VARIANTS, blur_levels

pytestmark = pytest.mark.tensorflow  # whole defocus series through the shipped model (also on the latest Python)


@pytest.fixture(scope="module")
def held_out_paths(in_focus_paths):
    # The repository's in-focus images the shipped model never trained on (examples/ a07).
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    # By stem: the repository stores as .tif what the development set names .png.
    trained_on = {Path(p).stem for p in config["training"]["images"]}
    held_out = [p for p in in_focus_paths if p.stem not in trained_on]
    assert held_out, "the shipped model should leave some BBBC006 images out of training"
    return held_out


def predicted_series(model, image, camera=AS_IMAGED, seed=0):
    counts = image.astype(float)
    dark = counts.min()
    rng = np.random.default_rng(seed)
    return np.array([predict_image(camera.apply(b, dark, rng), model).defocus_level for b in blur_levels(counts)])


def test_predicted_level_grows_with_blur(model, held_out_paths):
    for path in held_out_paths:
        levels = predicted_series(model, read_image(path))
        assert spearmanr(np.arange(NUM_LEVELS), levels).correlation > 0.97, levels
        assert np.all(np.abs(levels - np.arange(NUM_LEVELS)) <= 1), levels


@pytest.mark.parametrize("camera", CAMERA_VARIANTS, ids=lambda camera: camera.name)
def test_camera_gain_and_offset_barely_matter(model, held_out_paths, camera):
    image = read_image(held_out_paths[0])
    reference = predicted_series(model, image)
    changed = predicted_series(model, image, camera)
    assert np.all(np.abs(changed - reference) <= 1), (reference, changed)
    assert np.all(np.abs(changed - np.arange(NUM_LEVELS)) <= 1), changed


def levels_of(model, paths):
    return {p.name: predict_image(read_image(p), model).defocus_level for p in paths}


def test_real_sharp_images_are_in_focus(model, in_focus_paths):
    levels = levels_of(model, in_focus_paths)
    assert all(level <= 1 for level in levels.values()), levels


def test_real_out_of_focus_images_are_out_of_focus(model, out_of_focus_paths):
    levels = levels_of(model, out_of_focus_paths)
    assert all(level >= 3 for level in levels.values()), levels


def test_development_set_sharp_images_are_in_focus(model, shared_in_focus_paths):
    levels = levels_of(model, shared_in_focus_paths)
    assert len(levels) == 7 and all(level <= 1 for level in levels.values()), levels


def test_development_set_out_of_focus_images_are_out_of_focus(model, shared_out_of_focus_paths):
    levels = levels_of(model, shared_out_of_focus_paths)
    assert len(levels) == 6 and all(level >= 3 for level in levels.values()), levels


def test_background_is_less_certain_than_nuclei(model, held_out_paths):
    image = read_image(held_out_paths[0])
    prediction = predict_image(image, model)
    # Patch content: bright structure vs flat background.
    windows = [[image[y:y + PATCH_SIZE, x:x + PATCH_SIZE] for x in prediction.x] for y in prediction.y]
    contrast = np.array([[np.percentile(w, 99) - np.percentile(w, 1) for w in row] for row in windows])
    structured = contrast > np.percentile(contrast, 75)
    empty = contrast < np.percentile(contrast, 25)
    assert prediction.patch_certainty[structured].mean() > prediction.patch_certainty[empty].mean()
