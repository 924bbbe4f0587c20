"""Training a refocus U-Net: the Keras network and the ONNX graph agree, runs resume exactly, fine-tuning."""

import numpy as np
import pytest

from focusnet.cli import main
from focusnet.errors import TrainingError
from focusnet.optics import Optics
from focusnet.refocus.model import load_refocus_model, read_refocus_config
from focusnet.refocus.training import RefocusSettings, refocus_training_optics, train_refocus

pytestmark = pytest.mark.tensorflow

TINY = dict(steps=6, batch_size=2, patch_size=32, base_filters=4, depth=1, validate_every=3, checkpoint_every=3,
            validation_pairs=4, max_level=3)


def test_the_onnx_graph_computes_what_the_trained_keras_network_does(tmp_path, in_focus_paths):
    from focusnet.refocus.unet import build_trainable, set_trainable_weights

    feature_network = "classifier"
    settings = RefocusSettings(**TINY, feature_network=feature_network)
    out = train_refocus(in_focus_paths[1:], tmp_path / "m", settings, [in_focus_paths[0]], progress=False)
    model = load_refocus_model(out)
    network = build_trainable(settings.spec)
    set_trainable_weights(network, settings.spec, model.weights)
    image = np.random.default_rng(0).random((64, 96)).astype(np.float32)
    model.run(image[:16, :16])  # builds the session
    onnx_output = model._session.run(None, {"image": image[None, None]})[0][0, 0]
    np.testing.assert_allclose(onnx_output, network(image[None, ..., None]).numpy()[0, ..., 0], atol=1e-4)
    config = read_refocus_config(out)
    assert config["training"]["completed_steps"] == 6 and config["training"]["settings"]["feature_network"] == \
        feature_network
    assert (out / "training_log.csv").read_text().count("\n") == 3  # a header and two validations


def test_a_run_in_two_parts_ends_as_one_uninterrupted_run(tmp_path, in_focus_paths):
    settings = RefocusSettings(**TINY, feature_network="random")
    whole = train_refocus(in_focus_paths[1:], tmp_path / "whole", settings, [in_focus_paths[0]], progress=False)
    parts = train_refocus(in_focus_paths[1:], tmp_path / "parts", settings, [in_focus_paths[0]], progress=False,
                          stop_after=3)
    assert read_refocus_config(parts)["training"]["completed_steps"] == 3
    with pytest.raises(TrainingError, match="already holds a training run"):
        train_refocus(in_focus_paths[1:], parts, settings, [in_focus_paths[0]], progress=False)
    with pytest.raises(TrainingError, match="differs from the checkpoint's"):
        train_refocus(in_focus_paths[1:], parts, RefocusSettings(**{**TINY, "steps": 7}), [in_focus_paths[0]],
                      progress=False, resume=True)
    train_refocus(in_focus_paths[1:], parts, settings, [in_focus_paths[0]], progress=False, resume=True)
    first, second = load_refocus_model(whole).weights, load_refocus_model(parts).weights
    for name in first:  # same machine, same program: the same arithmetic
        np.testing.assert_allclose(first[name], second[name], rtol=1e-5, atol=1e-6)


def test_fine_tuning_keeps_each_levels_blur_and_the_network(tmp_path, in_focus_paths):
    initial = train_refocus(in_focus_paths[1:], tmp_path / "initial", RefocusSettings(**TINY, feature_network="none"),
                            [in_focus_paths[0]], progress=False)
    optics = refocus_training_optics(str(initial), numerical_aperture=1.4, refractive_index=1.515,
                                     pixel_size_um=0.1)
    assert optics.defocus_phase == "exact" and optics.z_step_um < Optics().z_step_um
    with pytest.raises(TrainingError, match="the run asks for"):
        train_refocus(in_focus_paths[1:], tmp_path / "other", RefocusSettings(
            **{**TINY, "base_filters": 8}, init_model=str(initial)), [in_focus_paths[0]], optics, progress=False)
    status = main(["train-refocus", "--images", str(in_focus_paths[1]), "--out", str(tmp_path / "tuned"), "--init",
                   str(initial), "--steps", "3", "--batch-size", "2", "--patch-size", "32", "--base-filters", "4",
                   "--depth", "1", "--max-level", "3", "--validate-every", "3", "--feature-weight", "0",
                   "--na", "1.4", "--refractive-index", "1.515", "--pixel-size", "0.1"])
    assert status == 0
    config = read_refocus_config(tmp_path / "tuned")
    assert config["simulator"]["optics"]["pixel_size_um"] == 0.1
    assert config["training"]["init_weights_sha256"] == read_refocus_config(initial)["weights"]["sha256"]
    assert (tmp_path / "tuned" / "split" / "validation.tif").is_file()  # one image: split in two
