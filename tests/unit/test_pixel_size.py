"""Pixel size: read from files, given, or assumed; images resampled to the model's."""

import csv

import numpy as np
import pytest
import tifffile

from focusnet.batch import predict_paths
from focusnet.cli import main
from focusnet.errors import UnmeasurableImageError
from focusnet.figures import overlay_rgb
from focusnet.images import read_image_file
from focusnet.inference import predict_image, resample_to_model_pixels


@pytest.fixture
def pixels():
    return (np.random.default_rng(0).poisson(300, (120, 160)) + 100).astype(np.uint16)


@pytest.mark.parametrize("size,unit,expected", [(0.13, "µm", 0.13), (130.0, "nm", 0.13), (0.00013, "mm", 0.13)])
def test_ome_tiff_physical_size_with_its_unit(tmp_path, pixels, size, unit, expected):
    path = tmp_path / "image.ome.tif"
    tifffile.imwrite(path, pixels, metadata={"axes": "YX", "PhysicalSizeX": size, "PhysicalSizeXUnit": unit,
                                             "PhysicalSizeY": size, "PhysicalSizeYUnit": unit})
    assert read_image_file(path).pixel_size_um == pytest.approx(expected)


@pytest.mark.parametrize("unit,per_unit,expected", [("micron", 1 / 0.325, 0.325), ("um", 2.0, 0.5),
                                                    ("nm", 1 / 650, 0.65), ("\\u00B5m", 4.0, 0.25)])
def test_imagej_resolution_with_its_unit(tmp_path, pixels, unit, per_unit, expected):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, pixels, imagej=True, resolution=(per_unit, per_unit), metadata={"unit": unit})
    assert read_image_file(path).pixel_size_um == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("resolution", [(72, 72), (300, 300), None])
def test_resolution_without_a_physical_unit_is_ignored(tmp_path, pixels, resolution):
    # Cameras write 72 dpi: an inch is no pixel size in the sample.
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, pixels, resolution=resolution)
    assert read_image_file(path).pixel_size_um is None


def test_resampling_keeps_counts():
    image = (np.random.default_rng(1).poisson(500, (400, 600)) + 100).astype(np.uint16)
    half = resample_to_model_pixels(image, 0.5)
    assert half.shape == (200, 300)
    assert half.mean() == pytest.approx(image.mean(), rel=1e-3)
    assert half.std() < image.std() / 1.5  # anti-aliased: averaging lowers the noise


def test_an_image_at_finer_pixels_gets_the_levels_of_the_original(model, in_focus_image, out_of_focus_paths):
    from focusnet.images import read_image

    for image in (in_focus_image, read_image(out_of_focus_paths[0])):
        original = predict_image(image, model)
        # The same field imaged with pixels half as large (twice the magnification).
        fine = np.round(resample_to_model_pixels(image, 2.0)).astype(np.uint16)
        again = predict_image(fine, model, pixel_size_um=0.325)
        assert abs(again.defocus_level - original.defocus_level) <= 1
        assert again.patch_size == 168 and again.pixel_size_source == "given"
        assert again.y.max() + again.patch_size <= fine.shape[0] and again.x.max() + again.patch_size <= fine.shape[1]
        # Without the pixel size, the finer image looks sharper than it is.
        assumed = predict_image(fine, model)
        assert assumed.pixel_size_source == "assumed"


def test_too_small_after_resampling_points_to_a_model_for_that_optics(model, in_focus_image):
    with pytest.raises(UnmeasurableImageError, match="smaller than one 84x84 patch; measure it with a model fine-"):
        predict_image(in_focus_image[:200, :200], model, pixel_size_um=0.13)


def test_coarse_pixels_come_with_a_note(model, in_focus_image):
    prediction = predict_image(in_focus_image, model, pixel_size_um=1.3)
    assert any("coarser than the model's" in note for note in prediction.notes)
    assert not predict_image(in_focus_image, model).notes


def test_the_overlay_is_drawn_in_the_original_pixels(model, in_focus_image):
    fine = np.round(resample_to_model_pixels(in_focus_image[:260, :348], 2.0)).astype(np.uint16)
    prediction = predict_image(fine, model, pixel_size_um=0.325)
    rgb = overlay_rgb(fine, prediction)
    assert rgb.shape == fine.shape + (3,)
    y, x = prediction.y[0], prediction.x[0]
    assert not np.allclose(rgb[y, x], rgb[y, x].mean())  # a coloured border at the patch's corner


def test_a_given_pixel_size_beats_the_files_which_beats_the_models(model):
    from focusnet.inference import choose_pixel_size

    assert choose_pixel_size(model, 0.2, 0.3) == (0.2, "given")
    assert choose_pixel_size(model, None, 0.3) == (0.3, "file")
    assert choose_pixel_size(model) == (0.65, "assumed")


def test_sources_in_a_batch(tmp_path, in_focus_image):
    crop = in_focus_image[:260, :348]
    tifffile.imwrite(tmp_path / "a_plain.tif", crop)
    tifffile.imwrite(tmp_path / "b_imagej.tif", crop, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"unit": "micron"})
    sources = {r.path.rsplit("/", 1)[-1]: (r.pixel_size_source, r.pixel_size_um) for r in predict_paths([tmp_path])}
    assert sources == {"a_plain.tif": ("assumed", 0.65), "b_imagej.tif": ("file", pytest.approx(0.65))}
    given = {r.pixel_size_source for r in predict_paths([tmp_path], pixel_size_um=0.6)}
    assert given == {"given"}


def test_the_cli_reports_pixel_size_and_defocus_for_an_objective(tmp_path, in_focus_image, capsys):
    tifffile.imwrite(tmp_path / "image.tif", in_focus_image)
    out = tmp_path / "focus.csv"
    arguments = ["predict", str(tmp_path / "image.tif"), "--csv", str(out)]
    assert main(arguments) == 0
    assert "the model's 0.65 um was assumed" in capsys.readouterr().out
    assert main(arguments + ["--pixel-size", "0.65", "--na", "1.45", "--refractive-index", "1.512",
                             "--wavelength", "0.461"]) == 0
    (row,) = csv.DictReader(open(out, newline=""))
    assert row["pixel_size_source"] == "given" and float(row["pixel_size_um"]) == 0.65
    assert float(row["defocus_um"]) < 1.0
