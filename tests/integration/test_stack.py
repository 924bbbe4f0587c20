"""focusnet evaluate-stack: a real or simulated through-focus stack, against a classic sharpness metric."""

import json

import numpy as np
import pytest
import tifffile

from focusnet.cli import main
from focusnet.errors import ImageFormatError, InvalidParameterError
from focusnet.images import read_image_file, read_stack
from focusnet.simulate import AS_IMAGED, blur_levels
from focusnet.stacks import check_stack, normalized_variance

# Every plane goes through the network.


@pytest.fixture(scope="module")
def simulated_stack(tmp_path_factory, in_focus_image):
    """Levels 6..0..6 (2 um apart, the shipped model's optics) of a real in-focus crop, as an ImageJ hyperstack."""
    crop = in_focus_image[:260, :348].astype(float)
    dark = crop.min()
    blurred = blur_levels(crop, range(7))
    rng = np.random.default_rng(0)
    planes = np.stack([AS_IMAGED.apply(blurred[abs(level)], dark, rng) for level in range(-6, 7)])
    path = tmp_path_factory.mktemp("stack") / "stack.tif"
    tifffile.imwrite(path, planes, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"})
    return path


def evaluate_stack(path, **options):
    """What ``focusnet evaluate-stack --json`` writes."""
    return check_stack(path, **options).to_dict()


def test_a_stack_is_read_with_its_spacings(simulated_stack):
    stack = read_stack(simulated_stack)
    assert stack.data.shape == (1, 1, 13, 260, 348)
    assert stack.z_step_um == pytest.approx(2.0) and stack.pixel_size_um == pytest.approx(0.65)


def test_the_simulated_stack_is_measured_as_simulated(simulated_stack):
    result = evaluate_stack(simulated_stack, progress=False)
    assert result["sharpest_plane"] == 6 and result["pixel_size_source"] == "file"
    assert result["spearman_level"] >= 0.9 and result["spearman_defocus_um"] >= 0.9
    levels = [row["defocus_level"] for row in result["planes"]]
    assert all(abs(level - abs(index - 6)) <= 1 for index, level in enumerate(levels))
    assert 1 / 1.5 <= result["defocus_ratio"] <= 1.5


def test_the_command_writes_a_table_a_plot_json_and_the_sharpest_plane(simulated_stack, tmp_path, capsys):
    sharpest = tmp_path / "sharpest.tif"
    assert main(["evaluate-stack", str(simulated_stack), "--plots", str(tmp_path), "--json", str(tmp_path / "r.json"),
                 "--sharpest-out", str(sharpest)]) == 0
    printed = capsys.readouterr().out
    assert "sharpest plane by normalized variance: 6" in printed and "Spearman" in printed
    assert (tmp_path / "stack_focus_curve.png").stat().st_size > 10_000
    assert len(json.loads((tmp_path / "r.json").read_text())["planes"]) == 13
    plane = read_image_file(sharpest)
    assert plane.pixel_size_um == pytest.approx(0.65)
    np.testing.assert_array_equal(plane.pixels, read_stack(simulated_stack).data[0, 0, 6])


def test_outputs_go_into_new_folders_and_an_unwritable_one_is_refused_before_measuring(simulated_stack, tmp_path,
                                                                                        capsys):
    # The worked example's command: the sharpest plane into a folder that does not exist yet.
    sharpest, report = tmp_path / "new" / "zstack" / "sharpest.tif", tmp_path / "other" / "r.json"
    assert main(["evaluate-stack", str(simulated_stack), "--sharpest-out", str(sharpest), "--json", str(report)]) == 0
    assert read_image_file(sharpest).pixels.shape == (260, 348) and json.loads(report.read_text())["planes"]
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    capsys.readouterr()
    assert main(["evaluate-stack", str(simulated_stack), "--sharpest-out", str(blocker / "sharpest.tif")]) == 1
    err = capsys.readouterr()
    assert "is a file, not a folder" in err.err and "--sharpest-out" in err.err and "plane" not in err.out


def test_the_stack_is_never_written_over(simulated_stack, capsys):
    before = simulated_stack.read_bytes()
    assert main(["evaluate-stack", str(simulated_stack), "--sharpest-out", str(simulated_stack)]) == 1
    assert "is an input: refusing to write over it" in capsys.readouterr().err
    assert simulated_stack.read_bytes() == before


def test_a_stack_without_z_spacing_needs_one(tmp_path, simulated_stack):
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, read_stack(simulated_stack).data[0, 0, :5])
    with pytest.raises(InvalidParameterError, match="give the plane spacing") as raised:
        evaluate_stack(bare, progress=False)
    assert raised.value.setting == "z_step_um"
    assert evaluate_stack(bare, z_step_um=2.0, progress=False)["z_step_um"] == 2.0


def test_a_stack_of_several_channels_is_checked_on_the_channel_chosen(tmp_path, simulated_stack):
    path = tmp_path / "channels.tif"
    planes = read_stack(simulated_stack).data[0, 0]
    tifffile.imwrite(path, np.stack([np.full_like(planes, 100), planes], axis=1), imagej=True,
                     metadata={"axes": "ZCYX", "spacing": 2.0, "unit": "micron"})
    with pytest.raises(InvalidParameterError, match="choose the channel to check on") as raised:
        evaluate_stack(path, progress=False)
    assert raised.value.setting == "channel"
    assert evaluate_stack(path, channel=1, progress=False)["sharpest_plane"] == 6
    times = tmp_path / "times.tif"
    tifffile.imwrite(times, np.stack([planes, planes]), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(ImageFormatError, match="2 time points; give a stack of one time point"):
        evaluate_stack(times, z_step_um=2.0, progress=False)


def test_normalized_variance_prefers_the_sharp_plane(in_focus_image):
    blurred = blur_levels(in_focus_image.astype(float), [0, 3, 8])
    assert list(np.argsort(-normalized_variance(blurred))) == [0, 1, 2]


def test_the_real_stack_before_a_model_for_its_optics(shared_data_zstack):
    # At the shipped model's 0.65 um pixels the 26 x 13 um stack is smaller than one patch: every plane
    # says so, and points to a model for that optics.
    result = evaluate_stack(shared_data_zstack, progress=False)
    assert result["measured_planes"] == 0
    assert all("model fine-tuned for your optics" in row["error"] for row in result["planes"])
    assert abs(result["sharpest_plane"] - 20) <= 1  # the stack's README: plane 20 +- 1
