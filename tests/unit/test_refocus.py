"""Refocusing: model folders, the normalisation, training pairs, the decisions of refocus_image, metrics."""

import json
import shutil

import numpy as np
import pytest

from conftest import make_refocus_model
from focusnet.errors import ImageFormatError, ModelError
from focusnet.optics import Optics
from focusnet.refocus.model import load_refocus_model
from focusnet.refocus.pairs import PERCENTILES, normalisation, prepare_refocus_source, sample_pairs
from focusnet.refocus.restore import refocus_image, restore_counts
from focusnet.refocus.validate import count_objects, matched, quality, richardson_lucy
from focusnet.simulate import degrade


def test_a_model_folder_round_trips_and_refuses_damage(tmp_path, refocus_model_dir):
    model = load_refocus_model(refocus_model_dir)
    assert model.restorable_levels == (1, 2, 3, 4, 5, 6)
    copy = tmp_path / "copy"
    shutil.copytree(refocus_model_dir, copy)
    weights = copy / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or modified"):
        load_refocus_model(copy)
    config = json.loads((refocus_model_dir / "config.json").read_text())
    for change, message in ((dict(format="focusnet-model"), "not a focusnet refocus model"),
                            (dict(format_version=99), "format version 99"),
                            (dict(restorable_levels=[9]), "damaged refocus config")):
        folder = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        shutil.copytree(refocus_model_dir, folder)
        (folder / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ModelError, match=message):
            load_refocus_model(folder)
    with pytest.raises(ModelError, match="not found"):
        load_refocus_model(tmp_path / "missing")


def test_normalisation_maps_the_percentiles_to_0_and_1_and_never_divides_by_zero():
    counts = np.arange(10000, dtype=float).reshape(100, 100)
    low, span = normalisation(counts)
    assert low == pytest.approx(np.percentile(counts, PERCENTILES[0]))
    assert (low + span) == pytest.approx(np.percentile(counts, PERCENTILES[1]))
    assert normalisation(np.full((8, 8), 7.0)) == (7.0, 1.0)


def test_pairs_hold_a_noisy_defocused_input_and_its_noise_free_in_focus_target(in_focus_image):
    source = prepare_refocus_source(in_focus_image[:200, :200], "a07", max_level=4, patch_size=64)
    inputs, targets, levels, scales = sample_pairs([source], 32, 64, 4, np.random.default_rng(1))
    assert inputs.shape == targets.shape == (32, 64, 64, 1) and set(levels) <= set(range(5))
    again = sample_pairs([source], 32, 64, 4, np.random.default_rng(1))
    np.testing.assert_array_equal(inputs, again[0])
    # Back in counts, the target's total signal equals the input's (blur conserves it; noise on average).
    signal_in = (inputs[..., 0] * scales[:, 1, None, None] + scales[:, 0, None, None]).mean()
    signal_out = (targets[..., 0] * scales[:, 1, None, None] + scales[:, 0, None, None]).mean()
    assert signal_out == pytest.approx(signal_in, rel=0.05)
    # Smoothed past its shot noise, a defocused input has less detail than its in-focus target.
    from scipy.ndimage import gaussian_gradient_magnitude

    def detail(image):
        return gaussian_gradient_magnitude(image.astype(float), 2).mean()

    # Patches with nuclei (background-only ones hold nothing to blur) at levels of visible blur.
    high = [i for i in range(32) if levels[i] >= 3 and targets[i].std() > 0.1]
    assert len(high) >= 5 and all(detail(targets[i, ..., 0]) > detail(inputs[i, ..., 0]) for i in high)


def test_an_identity_model_returns_its_input_at_any_pixel_size(identity_refocus_model_dir, in_focus_image):
    counts = in_focus_image[:150, :230].astype(np.float32)
    for zoom in (1.0, 0.5, 1.7):
        np.testing.assert_allclose(restore_counts(counts, identity_refocus_model_dir, zoom), counts, atol=1e-2)


def test_large_images_are_tiled_without_seams(refocus_model_dir, in_focus_image, monkeypatch):
    from focusnet.refocus import model as model_module

    model = load_refocus_model(refocus_model_dir)
    image = np.tile(in_focus_image, (2, 2))[:1000, :1300].astype(np.float32) / 4000
    whole = model.run(image)
    monkeypatch.setattr(model_module, "TILE", 384)
    tiled = model.run(image)
    # Tiles overlap by more than the tiny network's reach, so each pixel sees what it would in one piece.
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_refocus_image_decides_by_the_classifier_and_says_why(refocus_model_dir, model, in_focus_image):
    in_focus = refocus_image(in_focus_image, refocus_model_dir, model)
    assert not in_focus.refocused and in_focus.image is None and "in focus" in in_focus.reason
    noise = np.random.default_rng(0).poisson(200, (300, 300)).astype(np.uint16)
    empty = refocus_image(noise, refocus_model_dir, model)
    assert not empty.refocused and "no content" in empty.reason
    from focusnet.photons import binomial_thinning, photon_transfer

    gain, offset = photon_transfer(in_focus_image)
    dim = binomial_thinning(in_focus_image, 0.01, offset, gain, np.random.default_rng(1))  # 1 % of the light
    too_noisy = refocus_image(dim, refocus_model_dir, model)
    assert not too_noisy.refocused and too_noisy.image is None and "too noisy to judge" in too_noisy.reason
    far = degrade(in_focus_image[:260, :350], 10, seed=1, optics=Optics(defocus_phase="paraxial"))
    beyond = refocus_image(far, refocus_model_dir, model)
    assert not beyond.refocused and "beyond what the refocus model restores" in beyond.reason


def test_a_refocused_image_keeps_type_and_shape_and_an_unimproved_one_is_flagged(identity_refocus_model_dir,
                                                                                  model, in_focus_image):
    defocused = degrade(in_focus_image, 3, seed=2, optics=Optics(defocus_phase="paraxial"))
    result = refocus_image(defocused, identity_refocus_model_dir, model)
    assert result.refocused and result.image.dtype == np.uint16 and result.image.shape == defocused.shape
    np.testing.assert_array_equal(result.image, defocused)  # the identity changes nothing ...
    assert not result.improved and result.reason.startswith("not improved")  # ... and is flagged for it
    as_float = refocus_image(defocused / 65535.0, identity_refocus_model_dir, model, scale=65535)
    assert as_float.image.dtype == np.float64 and np.abs(as_float.image * 65535 - defocused).max() < 0.01
    with pytest.raises(ImageFormatError, match="explicit scale"):
        refocus_image(defocused / 65535.0, identity_refocus_model_dir, model)


def test_metrics_match_intensities_and_count_objects():
    rng = np.random.default_rng(3)
    reference = rng.random((64, 64))
    assert quality(3 * reference + 10, reference)["psnr"] > 100  # a scale and an offset are not errors
    np.testing.assert_allclose(matched(2 * reference - 1, reference), reference, atol=1e-9)
    disks = np.zeros((100, 100))
    yy, xx = np.mgrid[:100, :100]
    for y, x in ((20, 20), (50, 70), (80, 30)):
        disks[(yy - y) ** 2 + (xx - x) ** 2 < 36] = 1000
    assert count_objects(disks + 100, pixel_size_um=0.65) == 3


def test_richardson_lucy_with_the_true_psf_restores_simulated_defocus(in_focus_image):
    optics = Optics()
    crop = in_focus_image[:128, :128]
    blurred = degrade(crop, 2, optics=optics, seed=4)
    dark = float(crop.min())
    restored = richardson_lucy(blurred, 2 * optics.z_step_um, optics, dark)
    assert quality(restored, crop)["psnr"] > quality(blurred, crop)["psnr"]


def test_a_model_made_for_tests_is_what_the_fixture_says(tmp_path):
    folder = make_refocus_model(tmp_path / "m", restorable=(2, 3))
    assert load_refocus_model(folder).restorable_levels == (2, 3)


def test_refocusing_never_gives_content_to_patches_that_had_none(refocus_model_dir, model, in_focus_image):
    from focusnet.inference import predict_image

    rng = np.random.default_rng(6)
    defocused = degrade(in_focus_image, 3, seed=2, optics=Optics(defocus_phase="paraxial")).astype(float)
    for mean in (20, 2000):  # dim and bright empty fields beside the nuclei
        field = np.concatenate([defocused[:, :348], rng.poisson(mean, (520, 348)) + defocused.min()], axis=1)
        result = refocus_image(field.clip(0, 65535).astype(np.uint16), refocus_model_dir, model, force=True)
        after = predict_image(result.image, model, judge_noise=False)  # content, however noisy
        assert result.before.has_content[:, -2:].sum() == 0  # the empty half is empty ...
        assert not (after.has_content & ~result.before.has_content).any()  # ... and stays so


def test_pixels_far_from_the_models_are_not_refocused(refocus_model_dir, model, in_focus_image):
    defocused = degrade(in_focus_image, 3, seed=2, optics=Optics(defocus_phase="paraxial"))
    result = refocus_image(defocused, refocus_model_dir, model, pixel_size_um=1.3)
    assert not result.refocused and "2.0x coarser than the refocus model's" in result.reason, result.reason
    assert result.before is not None  # measured, and the answer says why not
