"""Training runs: outputs, reproducibility, resume."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from focusnet.contract import NUM_LEVELS, PATCH_SIZE
from focusnet.errors import TrainingError
from focusnet.images import read_image, write_tiff
from focusnet.loader import load_model
from focusnet.train import TrainingSettings, train

pytestmark = pytest.mark.tensorflow  # training runs (also on the latest Python)


@pytest.fixture(scope="module")
def small_images(tmp_path_factory, in_focus_paths):
    """Crops of real in-focus images: three for training, one held out."""
    folder = tmp_path_factory.mktemp("train_images")
    paths = []
    for index in range(4):
        target = folder / f"crop{index}.tif"
        top, left = (100, 200) if index < len(in_focus_paths) else (300, 420)
        write_tiff(target, read_image(in_focus_paths[index % len(in_focus_paths)])[top:top + 200, left:left + 250])
        paths.append(str(target))
    return paths


SETTINGS = dict(steps=6, batch_size=8, validate_every=3, checkpoint_every=3, validation_patches_per_level=2)


def test_training_writes_a_complete_model_folder(tmp_path, small_images):
    out = tmp_path / "model"
    train(small_images[:3], out, TrainingSettings(**SETTINGS), validation_images=small_images[3:], progress=False,
          command="focusnet train ...")
    for name in ("config.json", "weights.npz", "README.md", "training_log.csv", "training.png",
                 "checkpoint/state.npz"):
        assert (out / name).is_file(), name
    with open(out / "training_log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [3, 6]
    assert all(float(r["train_rps"]) > 0 for r in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["completed_steps"] == 6
    assert config["training"]["validation_images"] == small_images[3:]
    assert small_images[3] not in config["training"]["images"]
    # The run's settings are recorded once, in config.json.
    assert config["training"]["settings"] == dataclasses.asdict(TrainingSettings(**SETTINGS))
    assert sorted(p.name for p in (out / "checkpoint").iterdir()) == ["state.npz"]
    model = load_model(out)
    assert model.predict_patches(np.full((1, PATCH_SIZE, PATCH_SIZE), 0.01)).shape == (1, NUM_LEVELS)


def test_resumed_training_equals_an_uninterrupted_run(tmp_path, small_images):
    settings = TrainingSettings(**SETTINGS)
    straight = train(small_images[:3], tmp_path / "straight", settings, validation_images=small_images[3:],
                     progress=False)
    chunked = tmp_path / "chunked"
    train(small_images[:3], chunked, settings, validation_images=small_images[3:], progress=False, stop_after=3)
    assert json.loads((chunked / "config.json").read_text())["training"]["completed_steps"] == 3
    with pytest.raises(ValueError, match="holds a training run: resume it"):
        train(small_images[:3], chunked, settings, validation_images=small_images[3:], progress=False)
    train(small_images[:3], chunked, settings, validation_images=small_images[3:], progress=False, resume=True)
    with np.load(straight / "weights.npz") as a, np.load(chunked / "weights.npz") as b:
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_resume_refuses_a_different_run(tmp_path, small_images):
    out = tmp_path / "model"
    train(small_images[:3], out, TrainingSettings(**SETTINGS), validation_images=small_images[3:], progress=False,
          stop_after=3)
    changed = TrainingSettings(**dict(SETTINGS, batch_size=16))
    with pytest.raises(ValueError, match="differs from the checkpoint's in \\['settings'\\]"):
        train(small_images[:3], out, changed, validation_images=small_images[3:], progress=False, resume=True)


def test_a_completed_run_is_found_before_any_image_is_read(tmp_path, small_images):
    images = tmp_path / "images"
    images.mkdir()
    paths = [str(images / f"{index}.tif") for index in range(4)]
    for source, target in zip(small_images, paths):
        (images / Path(target).name).write_bytes(Path(source).read_bytes())
    settings = TrainingSettings(**dict(SETTINGS, steps=3))
    out = train(paths[:3], tmp_path / "model", settings, validation_images=paths[3:], progress=False)
    for path in paths:  # reading any image now fails: the check must come first
        Path(path).write_bytes(b"II*\x00 damaged")
    with pytest.raises(TrainingError, match="already completed 3 of 3 steps"):
        train(paths[:3], out, settings, validation_images=paths[3:], progress=False, resume=True)
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(paths[:3], out, settings, validation_images=paths[3:], progress=False)
    with pytest.raises(TrainingError, match="no checkpoint to resume from"):
        train(paths[:3], tmp_path / "other", settings, validation_images=paths[3:], progress=False, resume=True)


def test_a_version_1_run_resumes_from_its_config(tmp_path, small_images):
    # Folders written before the run was recorded once (format 1, checkpoint/settings.json) still resume.
    from helpers import as_version_1

    settings = TrainingSettings(**SETTINGS)
    out = train(small_images[:3], tmp_path / "model", settings, validation_images=small_images[3:], progress=False,
                stop_after=3)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps(as_version_1(config)))
    train(small_images[:3], out, settings, validation_images=small_images[3:], progress=False, resume=True)
    assert json.loads((out / "config.json").read_text())["training"]["completed_steps"] == 6


def test_paper_architecture_trains_too(tmp_path, small_images):
    out = train(small_images[:3], tmp_path / "paper", TrainingSettings(**dict(SETTINGS, architecture="paper", steps=2,
                                                                               validate_every=2, checkpoint_every=2)),
                validation_images=small_images[3:], progress=False)
    assert load_model(out).architecture.name == "paper"


def test_too_few_images(tmp_path, small_images):
    from focusnet.train import plan_run

    with pytest.raises(ValueError, match="at least two images"):
        plan_run(small_images[:1], TrainingSettings(**SETTINGS))  # no model folder to split into
    # One image is split in two, if it is large enough for two patches.
    tiny = tmp_path / "tiny.tif"
    write_tiff(tiny, read_image(small_images[0])[:100, :100])
    with pytest.raises(TrainingError, match="cannot be split into two parts"):
        train([tiny], tmp_path / "m", TrainingSettings(**SETTINGS), progress=False)


def test_a_model_started_from_folded_weights_computes_what_they_compute(random_model_dir):
    from focusnet.model import load_model_folder
    from focusnet.train import Trainer

    initial = load_model_folder(random_model_dir)
    trainer = Trainer(TrainingSettings(**SETTINGS), initial.weights)
    patches = np.random.default_rng(2).uniform(100, 3000, (6, PATCH_SIZE, PATCH_SIZE, 1)).astype(np.float32) / 65535
    np.testing.assert_allclose(trainer.model(patches, training=True).numpy(), initial.predict_patches(patches),
                               atol=1e-5)  # frozen batch normalisation: inference mode even while training
    for name, value in trainer.inference_weights().items():
        np.testing.assert_allclose(value, initial.weights[name], atol=1e-6, err_msg=name)


def test_fine_tuning_from_one_image_splits_it_and_evaluates_on_the_held_out_part(tmp_path, random_model_dir,
                                                                                in_focus_image):
    from focusnet.card import read_evaluation
    from focusnet.optics import Optics

    image = tmp_path / "plane.tif"
    write_tiff(image, in_focus_image[:200, :120])
    settings = TrainingSettings(**dict(SETTINGS, init_model=str(random_model_dir)))
    optics = Optics(numerical_aperture=1.2, refractive_index=1.333, pixel_size_um=0.3, z_step_um=0.5)
    out = train([image], tmp_path / "model", settings, optics=optics, progress=False, command="focusnet train --init")
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["split_from"] == str(image)
    assert config["training"]["images"] == [str(out / "split" / "train.tif")]
    assert config["training"]["settings"]["init_model"] == str(random_model_dir)
    assert config["training"]["init_weights_sha256"] == json.loads(
        (random_model_dir / "config.json").read_text())["weights"]["sha256"]
    assert config["simulator"]["optics"]["numerical_aperture"] == 1.2
    halves = [read_image(out / "split" / name) for name in ("train.tif", "validation.tif")]
    np.testing.assert_array_equal(np.concatenate(halves), in_focus_image[:200, :120])
    evaluation = read_evaluation(out)
    assert evaluation["simulated"]["images"] == [str(out / "split" / "validation.tif")]
    card = (out / "README.md").read_text()
    assert "Fine-tuned from" in card and "split in two" in card and "Stale" not in card


def test_fine_tuning_needs_the_same_architecture(tmp_path, small_images, random_model_dir):
    settings = TrainingSettings(**dict(SETTINGS, architecture="paper", init_model=str(random_model_dir)))
    with pytest.raises(TrainingError, match="cannot start a 'paper' one"):
        train(small_images[:3], tmp_path / "m", settings, validation_images=small_images[3:], progress=False)


def test_the_fine_tuning_z_step_keeps_each_levels_blur_in_micrometres():
    from focusnet.defocus import blur_diameter_um
    from focusnet.optics import Optics
    from focusnet.train import fine_tuning_z_step

    shipped = Optics()
    assert fine_tuning_z_step(shipped, shipped) == pytest.approx(2.0)
    assert fine_tuning_z_step(shipped, Optics(pixel_size_um=0.13)) == pytest.approx(2.0)  # same lens, finer pixels
    oil = Optics(wavelength_um=0.461, numerical_aperture=1.45, refractive_index=1.512, pixel_size_um=0.13)
    step = fine_tuning_z_step(shipped, oil)
    assert 0.5 < step < 2.0  # a 1.45 NA objective blurs faster per micrometre

    def defocus_blur(z, optics):
        return np.sqrt(blur_diameter_um(z, optics) ** 2 - blur_diameter_um(0.0, optics) ** 2)

    assert defocus_blur(10 * step, oil) == pytest.approx(defocus_blur(20.0, shipped), rel=0.02)


def test_the_cli_fine_tunes_the_shipped_model_by_default(tmp_path, in_focus_image, capsys):
    from focusnet.cli import main

    image = tmp_path / "plane.tif"
    write_tiff(image, in_focus_image[:200, :120])
    assert main(["train", "--init", "--images", str(image), "--out", str(tmp_path / "m"), "--steps", "2",
                 "--validate-every", "2", "--checkpoint-every", "2", "--na", "0.8", "--pixel-size", "0.325"]) == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["settings"]["init_model"] == "shipped"  # by name: no installation path
    assert config["training"]["settings"]["learning_rate"] == 3e-4
    optics = config["simulator"]["optics"]
    assert optics["numerical_aperture"] == 0.8 and optics["wavelength_um"] == 0.5 and optics["z_step_um"] < 2.0
    assert "level L = " in capsys.readouterr().out


def test_float_images_are_refused_as_predict_refuses_them(tmp_path, small_images):
    from focusnet.errors import ImageFormatError

    floating = tmp_path / "float.tif"
    write_tiff(floating, read_image(small_images[0]).astype(np.float32) / 65535)
    with pytest.raises(ImageFormatError, match="floating-point pixels; training needs raw counts"):
        train([floating, small_images[1]], tmp_path / "m", TrainingSettings(**SETTINGS), progress=False)
    assert not (tmp_path / "m" / "checkpoint").exists()
