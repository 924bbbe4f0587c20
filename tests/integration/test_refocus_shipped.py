"""The shipped refocus model: what it restores, what it refuses, its exports, measured on real images."""

import json

import numpy as np
import pytest

from focusnet.contract import SHIPPED_ONNX
from focusnet.optics import Optics
from focusnet.refocus.model import SHIPPED_REFOCUS_DIR, load_refocus_model
from focusnet.refocus.restore import refocus_image
from focusnet.refocus.validate import quality
from focusnet.simulate import blur_levels, degrade


@pytest.fixture(scope="module")
def shipped():
    return load_refocus_model()


def test_the_shipped_model_is_small_evaluated_and_claims_only_what_its_evaluation_shows(shipped):
    assert sum(p.stat().st_size for p in SHIPPED_REFOCUS_DIR.iterdir() if p.is_file()) < 5_000_000
    evaluation = json.loads((SHIPPED_REFOCUS_DIR / "evaluation.json").read_text())
    by_level = evaluation["synthetic"]["summary"]["by_level"]
    assert shipped.restorable_levels and all(by_level[str(level)]["gain_db"] >= 1 for level in
                                             shipped.restorable_levels)
    assert "Restores levels" in (SHIPPED_REFOCUS_DIR / "README.md").read_text()
    # Its levels are the shipped classifier's: the same optics.
    assert shipped.optics == Optics(defocus_phase="paraxial")


def test_a_held_out_image_defocused_by_the_simulator_is_restored(shipped, model, in_focus_image):
    optics = shipped.optics
    reference = blur_levels(in_focus_image, [0], optics)[0]
    for level in (2, 4):
        defocused = degrade(in_focus_image, level, optics=optics, seed=level)
        result = refocus_image(defocused, shipped, model)
        assert result.refocused and result.improved, result.reason
        assert quality(result.image, reference)["psnr"] > quality(defocused, reference)["psnr"] + 1


def test_noise_fields_are_never_given_content(shipped, model):
    rng = np.random.default_rng(11)
    for mean in (3, 30, 300, 3000):
        for offset in (0, 100, 1000):
            field = (rng.poisson(mean, (300, 400)) + offset).astype(np.uint16)
            result = refocus_image(field, shipped, model)
            assert not result.refocused and "no content" in result.reason and result.image is None


def test_the_exported_onnx_file_refocuses_as_the_folder_does(shipped, model, in_focus_image, tmp_path):
    from focusnet.cli import main

    out = tmp_path / "refocus.onnx"
    assert main(["export", "--refocus-model", "--format", "onnx", "--out", str(out)]) == 0
    defocused = degrade(in_focus_image, 3, optics=shipped.optics, seed=1)
    folder = refocus_image(defocused, shipped, model)
    onnx_file = refocus_image(defocused, load_refocus_model(out), model)
    assert np.abs(folder.image.astype(int) - onnx_file.image.astype(int)).max() <= 1  # 1e-4 of the range, rounded
    # The ONNX classifier (no TensorFlow) makes the same decisions.
    assert refocus_image(defocused, out, SHIPPED_ONNX).refocused
