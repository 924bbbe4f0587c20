"""Model folders: saving, loading, and clear refusal of wrong or damaged ones."""

import json

import numpy as np
import pytest

from focusnet.contract import MODEL_FORMAT_VERSION, NUM_LEVELS, PATCH_SIZE
from focusnet.contract import SHIPPED_MODEL_DIR as DEFAULT_MODEL_DIR
from focusnet.errors import ModelError
from focusnet.loader import load_model
from focusnet.model import read_config
from helpers import as_version_1


def test_config_records_what_a_model_is(random_model_dir):
    config = json.loads((random_model_dir / "config.json").read_text())
    for key in ("format_version", "architecture", "patch_size", "num_levels", "input_scale", "simulator",
                "training", "focusnet_version", "weights"):
        assert key in config
    assert config["patch_size"] == 84 and config["num_levels"] == 11 and config["input_scale"] == 65535
    assert config["simulator"]["optics"]["numerical_aperture"] == 0.5


def test_load_is_cached_per_process(random_model_dir):
    assert load_model(random_model_dir) is load_model(str(random_model_dir))


def test_predicts_distributions(random_model_dir):
    model = load_model(random_model_dir)
    probabilities = model.predict_patches(np.random.default_rng(0).uniform(0, 0.1, (7, PATCH_SIZE, PATCH_SIZE)))
    assert probabilities.shape == (7, NUM_LEVELS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="patches must have shape"):
        model.predict_patches(np.zeros((2, 80, PATCH_SIZE)))


def test_a_newer_format_version_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["format_version"] = 99
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="model format version 99 is newer than focusnet"):
        load_model(model_copy)


def test_an_unknown_old_format_version_is_refused(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["format_version"] = 0
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="model format version 0 is not supported"):
        load_model(model_copy)


def test_a_version_1_folder_is_upgraded_in_memory_and_left_untouched(model_copy):
    current = json.loads((model_copy / "config.json").read_text())
    current["training"] = {"settings": {"steps": 30, "seed": 2}, "images": ["a.tif"], "command": "focusnet train"}
    old_text = json.dumps(as_version_1(current))
    (model_copy / "config.json").write_text(old_text)
    model = load_model(model_copy)
    assert model.config["format_version"] == MODEL_FORMAT_VERSION
    assert model.config["training"] == current["training"]
    assert (model_copy / "config.json").read_text() == old_text  # upgraded in memory only
    assert model.predict_patches(np.zeros((1, PATCH_SIZE, PATCH_SIZE))).shape == (1, NUM_LEVELS)


def test_upgrades_chain_from_every_known_version():
    from focusnet.classifier import UPGRADES, upgrade_config

    assert sorted(UPGRADES) == list(range(1, MODEL_FORMAT_VERSION))
    config = upgrade_config({"format": "focusnet-model", "format_version": 1, "training": {"steps": 5}}, "test")
    assert config["format_version"] == MODEL_FORMAT_VERSION and config["training"] == {"settings": {"steps": 5}}
    # Before format 3 the simulator's defocus phase was the paraxial one, unrecorded.
    version_2 = {"format": "focusnet-model", "format_version": 2, "simulator": {"optics": {"z_step_um": 2.0}}}
    upgraded = upgrade_config(version_2, "test")
    assert upgraded["simulator"]["optics"] == {"z_step_um": 2.0, "defocus_phase": "paraxial"}
    assert version_2["simulator"]["optics"] == {"z_step_um": 2.0}  # the caller's config is not touched


def test_a_changed_folder_is_loaded_again(model_copy):
    first = load_model(model_copy)
    assert load_model(model_copy) is first
    config = json.loads((model_copy / "config.json").read_text())
    # Files that are not the model (logs, plots, a training run's temporary files) do not matter.
    (model_copy / "training_log.csv").write_text("step\n")
    (model_copy / "weights.npz.tmp.npz").write_bytes(b"half-written")
    assert load_model(model_copy) is first
    config["training"]["command"] = "changed"
    (model_copy / "config.json").write_text(json.dumps(config))
    assert load_model(model_copy) is not first


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_a_format_version_must_be_a_whole_number(model_copy, version):
    config = json.loads((model_copy / "config.json").read_text())
    config["format_version"] = version
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="is not a whole number"):
        load_model(model_copy)


def test_damaged_weights_are_detected(model_copy):
    data = bytearray((model_copy / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged or modified"):
        load_model(model_copy)


def test_damaged_config(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        read_config(model_copy)


@pytest.mark.parametrize("problem", ["no folder", "no config", "no weights", "other format", "other patch size",
                                     "other architecture"])
def test_wrong_folders_are_refused(model_copy, problem):
    config = json.loads((model_copy / "config.json").read_text())
    if problem == "no folder":
        target, match = model_copy / "missing", "model folder not found"
    elif problem == "no config":
        (model_copy / "config.json").unlink()
        target, match = model_copy, "not a focusnet model folder"
    elif problem == "no weights":
        (model_copy / "weights.npz").unlink()
        target, match = model_copy, "weights file weights.npz is missing"
    else:
        key, value, match = {"other format": ("format", "keras", "not a focusnet model config"),
                             "other patch size": ("patch_size", 64, "patch_size is 64"),
                             "other architecture": ("architecture", "resnet", "unknown architecture")}[problem]
        config[key] = value
        (model_copy / "config.json").write_text(json.dumps(config))
        target = model_copy
    with pytest.raises(ModelError, match=match):
        load_model(target)


def test_weights_of_the_wrong_shape(model_copy):
    with np.load(model_copy / "weights.npz") as archive:
        weights = dict(archive)
    weights["levels/bias"] = np.zeros(12, np.float32)
    config = json.loads((model_copy / "config.json").read_text())
    from focusnet.model import save_model

    with pytest.raises(ModelError, match="levels/bias has shape"):
        save_model(model_copy, config, weights)


def test_the_shipped_model_is_valid_and_small():
    config = read_config(DEFAULT_MODEL_DIR)
    assert config["architecture"] == "default"
    assert (DEFAULT_MODEL_DIR / "weights.npz").stat().st_size <= 5e6
    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    for section in ("## Training data", "## Reproduce", "## Evaluation", "## Known limits"):
        assert section in card
    assert "focusnet train" in card
    load_model()  # checks the hash and the shapes


def test_the_shipped_model_records_its_run_once():
    # The run's settings live in config.json alone (no checkpoint/settings.json copy).
    assert not (DEFAULT_MODEL_DIR / "checkpoint" / "settings.json").exists()
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert config["format_version"] == MODEL_FORMAT_VERSION
    assert config["training"]["settings"]["steps"] == config["training"]["completed_steps"] == 30000
