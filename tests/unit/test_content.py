"""Empty and noise-only fields are neither in focus nor out of focus."""

import numpy as np
import pytest

from conftest import HELD_OUT_IN_FOCUS
from focusnet.content import ROW_STEP, has_content, noise_sigma, structure_to_noise
from focusnet.contract import PATCH_SIZE
from focusnet.errors import NoContentError
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.simulate import blur_levels


@pytest.mark.parametrize("mean", [1, 3, 10, 100, 1000, 10000])
def test_pure_poisson_noise_holds_no_structure(mean):
    noise = np.random.default_rng(mean).poisson(mean, (400, PATCH_SIZE, PATCH_SIZE)) + 100
    ratio, _ = structure_to_noise(noise)
    assert ratio.max() < 0.25  # far below the content threshold of 1
    assert not has_content(noise).any()


@pytest.mark.parametrize("mean", [1, 3, 10, 100, 1000, 10000])
def test_a_field_of_pure_noise_is_not_called_in_focus(model, mean):
    # The measurement: Poisson noise plus an offset, mean 1 to 10,000 counts. No patch may be a
    # confident level 0 or 1; here no patch is judged at all, and the image gets a "no content" answer.
    field = (np.random.default_rng(mean).poisson(mean, (520, 696)) + 100).astype(np.uint16)
    with pytest.raises(NoContentError, match="no content") as caught:
        predict_image(field, model)
    assert caught.value.num_patches == 48 and caught.value.content_fraction == 0


def test_real_dark_background_is_not_called_in_focus(model, in_focus_image):
    # An empty stretch of a real BBBC006 image: no pixel above 200 counts (background ~130, nuclei up to 4000).
    background = in_focus_image[174:345, 89:260]
    assert background.max() < 200
    assert not has_content(np.stack([background[:84, :84], background[84:168, 84:168]])).any()
    with pytest.raises(NoContentError):
        predict_image(background, model)


def test_a_hot_pixel_is_not_content():
    field = np.random.default_rng(0).poisson(150, (PATCH_SIZE, PATCH_SIZE)).astype(float)
    field[40, 40] = 60000
    assert not has_content(field)[0]


def test_real_nuclei_are_content(in_focus_image):
    prediction = predict_image(in_focus_image)
    assert 0.5 < prediction.content_fraction < 1  # nuclei, and empty background between them
    assert prediction.has_content.sum() == round(prediction.content_fraction * prediction.num_patches)


def test_blurred_nuclei_are_still_content(in_focus_image):
    counts = in_focus_image.astype(float)
    blurred = blur_levels(counts, [10])[0]
    noisy = np.random.default_rng(0).poisson(np.maximum(blurred - counts.min(), 0)) + counts.min()
    assert predict_image(noisy.astype(np.uint16)).content_fraction > 0.5


def test_patches_without_content_take_no_part_in_the_answer(model, in_focus_image):
    # Half nuclei, half pure noise: the answer is the nuclei's, and no noise patch is judged.
    image = in_focus_image.copy()
    image[:, 348:] = np.random.default_rng(1).poisson(12, (520, 348)) + 100
    prediction = predict_image(image, model)
    assert not prediction.has_content[:, 4:].any()
    alone = predict_image(in_focus_image[:, :348], model)
    assert prediction.defocus_level == alone.defocus_level == 0
    rows = list(prediction.patch_rows())
    assert all(row["defocus_level"] is None and np.isnan(row["certainty"]) for row in rows if not row["content"])


def test_the_held_out_image_is_the_fixture(in_focus_image):
    np.testing.assert_array_equal(read_image(HELD_OUT_IN_FOCUS), in_focus_image)


def test_a_small_sharp_object_is_content():
    # One bright nucleus of 15 px in an 84 px patch of background: real content, however small.
    rng = np.random.default_rng(0)
    patch = rng.poisson(150, (PATCH_SIZE, PATCH_SIZE)).astype(float)
    rows, cols = np.mgrid[:PATCH_SIZE, :PATCH_SIZE]
    patch += 3000 * ((rows - 40) ** 2 + (cols - 40) ** 2 < 7.5 ** 2)
    assert has_content(patch)[0]


def test_each_patch_reports_its_structure_to_noise_and_content_follows_it(model, in_focus_image):
    from focusnet.contract import PATCH_COLUMNS
    from focusnet.inference import predict_image
    from focusnet.records import patch_records

    prediction = predict_image(in_focus_image, model)
    ratio = prediction.structure_to_noise
    assert ratio.shape == prediction.has_content.shape
    assert np.all(ratio[prediction.has_content] >= 1.0)  # content needs structure at least the noise
    records = list(patch_records("a07", prediction))
    assert "structure_to_noise" in PATCH_COLUMNS
    np.testing.assert_allclose([r["structure_to_noise"] for r in records], ratio.ravel())


# --- too noisy to judge -----------------------------------------------------------------------------

def thinned(image, fraction, seed=1):
    """The real image as if it had collected ``fraction`` of its light (exact binomial thinning)."""
    from focusnet.photons import binomial_thinning, photon_transfer

    gain, offset = photon_transfer(image)
    return binomial_thinning(image, fraction, offset, gain, np.random.default_rng(seed))


def test_patches_below_the_threshold_are_not_judged_however_sure_the_network_is(model, in_focus_image):
    from focusnet.content import TOO_NOISY_BELOW, judged_from

    dim = thinned(in_focus_image, 0.03)  # some patches above the threshold, some below
    prediction = predict_image(dim, model)
    ratio = prediction.structure_to_noise
    np.testing.assert_array_equal(prediction.judged, prediction.has_content & (ratio >= TOO_NOISY_BELOW))
    np.testing.assert_array_equal(judged_from(prediction.has_content, ratio), prediction.judged)
    noisy = prediction.has_content & ~prediction.judged
    assert noisy.any() and prediction.judged.any()
    assert prediction.judged_fraction == pytest.approx(prediction.judged.mean())
    rows = list(prediction.patch_rows())
    assert all(row["defocus_level"] is None and np.isnan(row["certainty"]) for row in rows if not row["judged"])
    assert sum(row["content"] and not row["judged"] for row in rows) == noisy.sum()
    # The answer is that of the judged patches alone: the same as a network that never saw the others.
    everyone = predict_image(dim, model, judge_noise=False)
    np.testing.assert_array_equal(everyone.has_content, prediction.has_content)
    assert not np.array_equal(everyone.distribution, prediction.distribution)


def test_an_image_with_content_but_too_little_light_is_too_noisy_not_a_level(model, in_focus_image):
    from focusnet.errors import TooNoisyError

    with pytest.raises(TooNoisyError, match="too noisy to judge: .* more light") as caught:
        predict_image(thinned(in_focus_image, 0.01), model, name="a07 at 1 %")
    error = caught.value
    assert error.reason == "too noisy" and str(error).startswith("a07 at 1 %")
    assert error.num_patches == 48 and 0 < error.content_fraction < 1 and error.judged_fraction == 0
    with pytest.raises(NoContentError):  # a thousandth of the light: not even content is left
        predict_image(thinned(in_focus_image, 0.001), model)


def test_predict_writes_a_too_noisy_image_as_a_nan_row_with_its_reason(tmp_path, in_focus_image, capsys):
    import csv

    import tifffile

    from focusnet.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    tifffile.imwrite(folder / "a_bright.tif", in_focus_image)
    tifffile.imwrite(folder / "b_dim.tif", thinned(in_focus_image, 0.01))
    out, patches = tmp_path / "focus.csv", tmp_path / "patches.csv"
    assert main(["predict", str(folder), "--csv", str(out), "--patches-csv", str(patches)]) == 0
    bright, dim = csv.DictReader(out.open())
    assert bright["reason"] == "" and bright["defocus_level"] == "0" and float(bright["judged_fraction"]) > 0.5
    assert dim["reason"] == "too noisy" and dim["defocus_level"] == dim["defocus_um"] == "nan"
    assert float(dim["judged_fraction"]) == 0 and float(dim["content_fraction"]) > 0
    assert "b_dim.tif: too noisy to judge" in capsys.readouterr().err
    rows = list(csv.DictReader(patches.open()))
    assert {row["image"] for row in rows} == {str(folder / "a_bright.tif")}  # a NaN row has no patches
    assert all(row["judged"] == ("1" if row["defocus_level"] != "nan" else "0") for row in rows)


@pytest.mark.parametrize("shape", [(5, 84, 84), (5, 80, 81)])  # an odd and an even number of samples
def test_the_noise_is_the_median_absolute_difference_as_numpy_defines_it(shape):
    regions = np.random.default_rng(0).poisson(50, shape).astype(np.float32)
    differences = np.abs(np.diff(regions[:, ::ROW_STEP, :], axis=2).reshape(len(regions), -1)) / np.float32(2 ** 0.5)
    np.testing.assert_array_equal(noise_sigma(regions), 1.4826 * np.median(differences, axis=1).astype(np.float64))


def test_overwriting_the_callers_regions_gives_the_same_answer():
    regions = np.random.default_rng(1).poisson(200, (6, 84, 84)).astype(np.float32)
    regions[:, 40, 40] = 60000  # hot pixels, which the test caps in place
    expected = structure_to_noise(regions)
    overwritten = regions.copy()
    answer = structure_to_noise(overwritten, overwrite=True)
    np.testing.assert_array_equal(answer[0], expected[0])
    np.testing.assert_array_equal(answer[1], expected[1])
    assert overwritten[0, 40, 40] < 60000 and regions[0, 40, 40] == 60000
