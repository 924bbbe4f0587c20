"""Levels as micrometres of defocus of the user's objective."""

import math

import numpy as np
import pytest

from focusnet.defocus import blur_diameter_um, defocus_scale
from focusnet.inference import objective_optics, predict_image
from focusnet.loader import load_model
from focusnet.optics import Optics, psf_profile

MODEL = Optics()
#: The shipped model's optics: simulated with the paraxial defocus phase (model format 2).
SHIPPED = Optics(defocus_phase="paraxial")
OIL_100X = Optics(wavelength_um=0.461, numerical_aperture=1.45, refractive_index=1.512)
WATER_40X = Optics(wavelength_um=0.52, numerical_aperture=1.2, refractive_index=1.333)


def test_the_models_own_optics_give_its_own_steps():
    scale = defocus_scale(MODEL, MODEL)
    np.testing.assert_allclose(scale(np.arange(11)), 2.0 * np.arange(11))
    assert scale(2.5) == pytest.approx(5.0)


def test_blur_at_focus_is_the_airy_disc_and_grows_with_defocus():
    at_focus = blur_diameter_um(0.0, MODEL)
    assert at_focus == pytest.approx(1.22 * MODEL.wavelength_um / MODEL.numerical_aperture, rel=0.15)
    diameters = blur_diameter_um([0, 2, 5, 10, 20], MODEL)
    assert np.all(np.diff(diameters) > 0)
    # Far from focus it approaches the geometric blur disc, 2 z tan(theta) (2 z NA/n when paraxial).
    assert diameters[-1] == pytest.approx(2 * 20 * math.tan(math.asin(0.5)), rel=0.25)


@pytest.mark.parametrize("objective", [OIL_100X, WATER_40X], ids=["100x oil", "40x water"])
def test_a_higher_aperture_reaches_the_same_blur_closer_to_focus(objective):
    scale = defocus_scale(MODEL, objective)
    micrometres = scale(np.arange(11))
    assert micrometres[0] == 0 and np.all(np.diff(micrometres) > 0)
    assert np.all(micrometres[1:] < 2.0 * np.arange(1, 11))
    # Equal defocus blur (beyond the in-focus spot), both measured with the same PSF code.
    for level in (3, 7, 10):
        model_blur = np.sqrt(blur_diameter_um(2.0 * level, MODEL) ** 2 - blur_diameter_um(0.0, MODEL) ** 2)
        own = np.sqrt(blur_diameter_um(scale(level), objective) ** 2 - blur_diameter_um(0.0, objective) ** 2)
        assert own == pytest.approx(model_blur, rel=0.02)


def test_a_lower_aperture_needs_more_defocus():
    assert defocus_scale(MODEL, Optics(numerical_aperture=0.3))(5) > 10.0


def test_images_get_micrometres_and_a_lower_bound_beyond_the_last_level(out_of_focus_paths):
    from focusnet.images import read_image

    model = load_model()
    image = read_image(out_of_focus_paths[0])
    prediction = predict_image(image, model)
    assert prediction.defocus_level == 10 and prediction.defocus_um_lower_bound
    # Level 10 is 20 um of the shipped model's paraxial simulation; a real 20x/0.5 objective
    # (exact phase) gives that blur a little closer to focus.
    assert prediction.defocus_um == pytest.approx(defocus_scale(SHIPPED, MODEL)(10))
    assert 16.0 < prediction.defocus_um < 20.0
    oil = predict_image(image, model, objective=objective_optics(model, 0.461, 1.45, 1.512))
    assert oil.defocus_um == pytest.approx(defocus_scale(SHIPPED, OIL_100X)(10))
    judged = prediction.judged_patches
    assert np.all(np.isfinite(prediction.patch_defocus_um[judged])) and np.all(prediction.patch_defocus_um[judged] > 0)


def test_an_impossible_objective_is_refused():
    from focusnet.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="must be smaller than the refractive index"):
        objective_optics(load_model(), numerical_aperture=1.4)


def test_the_objective_is_a_real_lens_whatever_the_model_was_simulated_with():
    model = load_model()
    assert model.config["simulator"]["optics"]["defocus_phase"] == "paraxial"
    assert objective_optics(model).defocus_phase == "exact"
    assert objective_optics(model, numerical_aperture=0.75).defocus_phase == "exact"
    # Same lens, same phase: the model's own z steps.
    np.testing.assert_allclose(defocus_scale(SHIPPED, SHIPPED)(np.arange(11)), 2.0 * np.arange(11))


@pytest.mark.parametrize("objective", [OIL_100X, WATER_40X], ids=["100x oil", "40x water"])
def test_immersion_objectives_blur_faster_than_the_paraxial_phase_says(objective):
    import dataclasses

    paraxial = dataclasses.replace(objective, defocus_phase="paraxial")
    exact_um, paraxial_um = defocus_scale(MODEL, objective)(10), defocus_scale(MODEL, paraxial)(10)
    assert exact_um < 0.75 * paraxial_um


def test_a_confocal_has_its_own_axial_scale_and_a_thin_pinhole_blurs_less_near_focus():
    import dataclasses

    from focusnet.optics import Optics

    model = Optics(defocus_phase="paraxial")
    widefield = defocus_scale(model, dataclasses.replace(model, defocus_phase="exact"))
    confocal = defocus_scale(model, dataclasses.replace(model, defocus_phase="exact", modality="confocal"))
    levels = np.arange(11)
    assert np.all(np.diff(confocal(levels)) > 0)
    # The product of two PSFs is narrower near focus: a confocal reaches level 1's blur further out.
    assert confocal(1) > 1.3 * widefield(1)
    assert confocal(levels)[-1] == pytest.approx(widefield(levels)[-1], rel=0.25)


def test_predict_converts_with_the_modality_its_told(tmp_path, out_of_focus_paths):
    import csv

    from focusnet.cli import main

    rows = {}
    for modality in ("widefield", "confocal"):
        out = tmp_path / f"{modality}.csv"
        assert main(["predict", str(out_of_focus_paths[0]), "--csv", str(out), "--na", "1.2", "--refractive-index",
                     "1.33", "--modality", modality, "--pinhole", "1"]) == 0
        (rows[modality],) = csv.DictReader(open(out, newline=""))
    # The same blur: the same level; a confocal needs more defocus to blur as much (its own axial scale).
    assert rows["confocal"]["defocus_level"] == rows["widefield"]["defocus_level"]
    assert float(rows["confocal"]["defocus_um"]) > float(rows["widefield"]["defocus_um"])
    model = load_model()
    assert objective_optics(model, modality="confocal", pinhole_au=0.5).pinhole_au == 0.5
    assert objective_optics(model, modality=None).modality == "widefield"


# --- the sine condition's pupil ----------------------------------------------------------------------

def aplanatic(optics):
    import dataclasses

    return dataclasses.replace(optics, defocus_phase="exact", apodization="sine-condition")


@pytest.mark.parametrize("objective", [MODEL, WATER_40X, OIL_100X], ids=["20x air", "40x water", "100x oil"])
def test_the_sine_conditions_psf_holds_all_its_light(objective):
    from focusnet.optics import _encircled_energy

    radius = np.linspace(0.0, 30.0, 6001)
    for illumination in (False, True):
        energy = _encircled_energy(radius, psf_profile(radius, [0.0, 3.0], aplanatic(objective),
                                                       illumination=illumination))
        np.testing.assert_allclose(energy[-1], 1.0, atol=0.01)


@pytest.mark.parametrize("objective", [WATER_40X, OIL_100X], ids=["40x water", "100x oil"])
def test_far_from_focus_the_blur_is_the_geometric_disc_of_the_sine_conditions_pupil(objective):
    # A point source's light reaches the pupil with intensity 1 / cos(theta) per unit of pupil area, so the
    # fraction f of it within angle theta is (1 - cos theta) / (1 - cos theta_max): 84 % lies within
    # cos theta = 1 - 0.84 (1 - cos theta_max), a disc of radius z tan(theta). A uniform pupil puts 84 % within
    # sin theta = sqrt(0.84) NA / n.
    z = 40.0
    cos_max = math.sqrt(1 - (objective.numerical_aperture / objective.refractive_index) ** 2)
    theta_sine = math.acos(1 - 0.84 * (1 - cos_max))
    theta_uniform = math.asin(math.sqrt(0.84) * objective.numerical_aperture / objective.refractive_index)
    assert blur_diameter_um(z, aplanatic(objective)) == pytest.approx(2 * z * math.tan(theta_sine), rel=0.03)
    assert blur_diameter_um(z, objective) == pytest.approx(2 * z * math.tan(theta_uniform), rel=0.03)


def test_the_sine_condition_matters_at_high_aperture_only():
    for objective, low, high in ((MODEL, 0.97, 1.03), (WATER_40X, 1.04, 1.15), (OIL_100X, 1.1, 1.3)):
        ratio = defocus_scale(SHIPPED, objective)(5) / defocus_scale(SHIPPED, aplanatic(objective))(5)
        assert low < ratio < high, (objective, ratio)


def test_the_pupil_is_uniform_unless_asked_and_configs_without_it_read_uniform():
    from focusnet.inference import model_optics

    model = load_model()
    assert "apodization" not in model.config["simulator"]["optics"]
    assert model_optics(model).apodization == objective_optics(model).apodization == Optics().apodization == "none"
    assert "apodization" not in Optics().to_dict() and aplanatic(MODEL).to_dict()["apodization"] == "sine-condition"
