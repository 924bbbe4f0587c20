"""The confocal PSF of a thin layer: sharper than widefield with a small pinhole, and optical sectioning."""

import numpy as np
import pytest

from focusnet.errors import InvalidParameterError
from focusnet.optics import Optics, airy_unit_um, confocal_profile, psf_profile, sectioning

WATER_60X = Optics(wavelength_um=0.52, numerical_aperture=1.2, refractive_index=1.33, pixel_size_um=0.1)
RADIUS = np.linspace(0, 1, 401)


def _fwhm(profile):
    return 2 * RADIUS[np.argmax(profile < profile[0] / 2)]


def test_a_point_pinhole_narrows_the_psf_by_about_root_two_and_a_wide_one_does_not():
    widefield = _fwhm(psf_profile(RADIUS, [0.0], WATER_60X)[:, 0])
    point = _fwhm(confocal_profile(RADIUS, [0.0], WATER_60X, 0.05, excitation_wavelength_um=0.52)[:, 0])
    wide = _fwhm(confocal_profile(RADIUS, [0.0], WATER_60X, 10.0, excitation_wavelength_um=0.52)[:, 0])
    assert point / widefield == pytest.approx(1 / np.sqrt(2), abs=0.04)
    assert wide == pytest.approx(widefield, rel=0.05)


def test_the_pinhole_rejects_out_of_focus_light_of_a_thin_layer():
    distances = [0.0, 0.5, 1.0, 2.0, 4.0]
    one_au, ten_au = sectioning(distances, WATER_60X, 1.0), sectioning(distances, WATER_60X, 10.0)
    assert one_au[0] == pytest.approx(1.0, abs=0.02) and ten_au[0] == pytest.approx(1.0, abs=0.02)
    assert np.all(np.diff(one_au) < 0) and one_au[2] < 0.1  # 1 um from focus: under a tenth of the light
    assert np.all(ten_au >= one_au) and ten_au[2] > 0.8  # a wide pinhole barely sections


def test_airy_units_and_refusals():
    assert airy_unit_um(WATER_60X) == pytest.approx(1.22 * 0.52 / 1.2)
    with pytest.raises(InvalidParameterError, match="pinhole"):
        confocal_profile(RADIUS, [0.0], WATER_60X, 0)
    with pytest.raises(InvalidParameterError, match="excitation wavelength"):
        confocal_profile(RADIUS, [0.0], WATER_60X, 1.0, excitation_wavelength_um=0.7)


def test_a_simulated_confocal_dims_a_thin_layer_out_of_focus_where_widefield_keeps_its_light(in_focus_image):
    import dataclasses

    from focusnet.simulate import blur_levels

    crop = in_focus_image[:128, :128].astype(float)
    widefield = Optics(wavelength_um=0.46, numerical_aperture=0.75, pixel_size_um=0.32, z_step_um=1.0)
    confocal = dataclasses.replace(widefield, modality="confocal")
    signal = crop - crop.min()
    for optics, expected in ((widefield, [1.0, 1.0, 1.0]), (confocal, None)):
        blurred = blur_levels(signal, [0, 2, 6], optics)
        totals = blurred.sum(axis=(1, 2)) / signal.sum()
        if expected is not None:
            np.testing.assert_allclose(totals, expected, rtol=0.02)
        else:
            assert totals[0] == pytest.approx(1.0, rel=0.05) and totals[1] < 0.5 and totals[2] < totals[1]


def test_only_a_confocal_records_its_confocal_fields():
    assert "modality" not in Optics().to_dict()  # model configs from before confocal stay as they were
    confocal = Optics(modality="confocal", pinhole_au=0.8, excitation_wavelength_um=0.45).to_dict()
    assert confocal["modality"] == "confocal" and confocal["pinhole_au"] == 0.8
    assert Optics(**confocal) == Optics(modality="confocal", pinhole_au=0.8, excitation_wavelength_um=0.45)
    with pytest.raises(InvalidParameterError, match="modality"):
        Optics(modality="lightsheet")
    with pytest.raises(InvalidParameterError, match="pinhole_au"):
        Optics(modality="confocal", pinhole_au=0)


def test_simulate_takes_the_modality_from_the_command_line(tmp_path, in_focus_paths):
    from focusnet.cli import main
    from focusnet.images import read_image

    assert main(["simulate", str(in_focus_paths[0]), "--out", str(tmp_path), "--levels", "0,2", "--modality",
                 "confocal", "--pinhole", "1", "--na", "0.75", "--pixel-size", "0.32", "--z-step", "1",
                 "--wavelength", "0.46", "--seed", "0"]) == 0
    in_focus, defocused = (read_image(path).astype(float) for path in sorted(tmp_path.glob("*.tif")))
    assert defocused.mean() - defocused.min() < 0.5 * (in_focus.mean() - in_focus.min())


def test_a_spinning_disk_sections_less_than_a_point_scanner_down_to_its_crosstalk(in_focus_image):
    import dataclasses

    from focusnet.optics import crosstalk_fraction
    from focusnet.simulate import blur_levels

    crop = in_focus_image[:128, :128].astype(float)
    signal = crop - crop.min()
    widefield = Optics(wavelength_um=0.46, numerical_aperture=0.75, pixel_size_um=0.32, z_step_um=1.0)
    totals = {}
    for modality in ("confocal", "spinning-disk"):
        blurred = blur_levels(signal, [0, 6], dataclasses.replace(widefield, modality=modality))
        totals[modality] = blurred.sum(axis=(1, 2)) / signal.sum()
    floor = crosstalk_fraction(5.0) / (1 + crosstalk_fraction(5.0))
    assert totals["spinning-disk"][0] == pytest.approx(1.0, rel=0.05)
    assert totals["spinning-disk"][1] > totals["confocal"][1] and totals["spinning-disk"][1] >= 0.9 * floor
    with pytest.raises(InvalidParameterError, match="pinhole_spacing"):
        Optics(modality="spinning-disk", pinhole_spacing=0.5)
