"""focusnet stack: the best plane of z-stacks (channels, time points), focus curves, best-plane TIFFs."""

import csv

import numpy as np
import pytest
import tifffile

from focusnet.cli import main
from focusnet.errors import ImageFormatError, InvalidParameterError
from focusnet.images import read_hyperstack
from focusnet.optics import Optics
from focusnet.simulate import AS_IMAGED, blur_levels
from focusnet.zstack import best_plane, predict_stack, refine_best_plane

PLANES = 11
#: The focal plane of each time point of the synthetic stack (not the middle one).
FOCUS = (3, 6)


# --- choosing the best plane ----------------------------------------------------------------------


def test_the_best_plane_has_the_lowest_expected_level_ties_to_the_more_certain():
    assert best_plane([3.0, 0.4, 0.2, 0.9], [0.9, 0.9, 0.5, 0.9]) == 2
    assert best_plane([3.0, 0.2, 0.2, 0.9], [0.9, 0.5, 0.8, 0.9]) == 2
    assert best_plane([np.nan, 0.2, np.nan], [np.nan, 0.1, np.nan]) == 1
    assert best_plane([np.nan, np.nan], [np.nan, np.nan]) is None


@pytest.mark.parametrize("vertex", [4.0, 4.3, 3.75])
def test_the_sub_plane_fit_finds_a_parabolas_vertex(vertex):
    planes = np.arange(9, dtype=float)
    expected = 0.5 * (planes - vertex) ** 2 + 0.1
    best = int(np.argmin(expected))
    assert refine_best_plane(expected, best) == pytest.approx(vertex)


def test_the_sub_plane_fit_falls_back_to_the_best_plane():
    assert refine_best_plane([0.1, 1.0, 2.0], 0) == 0.0  # no plane on one side
    assert refine_best_plane([1.0, 1.0, 1.0, 1.0, 1.0], 2) == 2.0  # flat: no curvature
    assert refine_best_plane([np.nan, 0.5, 0.1, np.nan, np.nan], 2) == 2.0  # neighbours missing
    # A steep side cannot pull the vertex more than one plane away.
    assert 2.0 <= refine_best_plane([9.0, 9.0, 0.0, 0.1, 0.2], 2) <= 3.0


# --- reading stacks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tczyx():
    return np.random.default_rng(1).integers(0, 1000, (2, 3, 4, 30, 40), dtype=np.uint16)


def test_an_imagej_hyperstack_is_read_in_tczyx_order(tmp_path, tczyx):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, np.moveaxis(tczyx, 1, 2), imagej=True, resolution=(1 / 0.2, 1 / 0.2),
                     metadata={"axes": "TZCYX", "spacing": 0.5, "unit": "micron"})
    stack = read_hyperstack(path)
    np.testing.assert_array_equal(stack.data, tczyx)
    assert (stack.z_step_um, stack.pixel_size_um) == (pytest.approx(0.5), pytest.approx(0.2))
    assert stack.channel_names == ["C0", "C1", "C2"] and stack.channel_index("2") == 2


def test_an_ome_tiff_gives_its_channel_names(tmp_path, tczyx):
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, tczyx[0], metadata={"axes": "CZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3,
                                                "PhysicalSizeZ": 1.5, "Channel": {"Name": ["DAPI", "GFP", "RFP"]}})
    stack = read_hyperstack(path)
    np.testing.assert_array_equal(stack.data[0], tczyx[0])
    assert stack.channel_names == ["DAPI", "GFP", "RFP"] and stack.channel_index("GFP") == 1
    assert stack.z_step_um == pytest.approx(1.5)
    with pytest.raises(InvalidParameterError, match=r"no channel 'YFP'.*0: DAPI, 1: GFP, 2: RFP"):
        stack.channel_index("YFP")
    with pytest.raises(InvalidParameterError, match="no channel 3: the stack has 3"):
        stack.channel_index(3)


def test_plain_pages_are_planes_and_axes_can_be_given(tmp_path, tczyx):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, tczyx[0, 0], photometric="minisblack")
    stack = read_hyperstack(plain)
    np.testing.assert_array_equal(stack.data[0, 0], tczyx[0, 0])
    assert "read as z" in stack.notes[0]
    # Two unnamed axes: which is z cannot be guessed, so the reader asks.
    tifffile.imwrite(plain, tczyx[0], photometric="minisblack")
    with pytest.raises(ImageFormatError, match="give --axes"):
        read_hyperstack(plain)
    np.testing.assert_array_equal(read_hyperstack(plain, axes="czyx").data[0], tczyx[0])
    np.testing.assert_array_equal(read_hyperstack(plain, axes="ZCYX").data[0], np.swapaxes(tczyx[0], 0, 1))
    with pytest.raises(ImageFormatError, match="give --axes"):
        read_hyperstack(plain, axes="ZYX")


def test_colour_and_single_planes_are_refused(tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((3, 40, 40, 3), np.uint8), photometric="rgb")
    with pytest.raises(ImageFormatError, match="colour"):
        read_hyperstack(rgb)
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.zeros((40, 40), np.uint16))
    with pytest.raises(ImageFormatError, match="at least two"):
        read_hyperstack(single)


# --- a synthetic stack from a real in-focus image -----------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_stack(tmp_path_factory, in_focus_image):
    """OME-TIFF, 2 time points x 2 channels x 11 planes 2 um apart, focus at planes 3 and 6.

    Channel "empty" is camera noise alone (no content); channel "nuclei" is a real in-focus crop
    blurred by the simulator (the shipped model's lens) by its distance from that time's focus.
    """
    crop = in_focus_image[:260, :348].astype(float)
    dark = crop.min()
    blurred = blur_levels(crop, range(PLANES), Optics(defocus_phase="paraxial"))
    rng = np.random.default_rng(0)
    data = np.empty((2, 2, PLANES) + crop.shape, np.uint16)
    for time, focus in enumerate(FOCUS):
        for plane in range(PLANES):
            data[time, 1, plane] = AS_IMAGED.apply(blurred[abs(plane - focus)], dark, rng)
            data[time, 0, plane] = rng.poisson(150.0, crop.shape) + 100
    path = tmp_path_factory.mktemp("zstack") / "well_A01.ome.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TCZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65,
                                           "PhysicalSizeZ": 2.0, "Channel": {"Name": ["empty", "nuclei"]}})
    return path, data


@pytest.mark.slow
def test_the_known_focal_plane_of_each_time_point_is_found(synthetic_stack, model):
    path, _ = synthetic_stack
    results = predict_stack(path, model, channel="nuclei")
    assert [result.best_plane for result in results] == list(FOCUS)
    for result, focus in zip(results, FOCUS):
        assert result.channel_name == "nuclei" and result.pixel_size_source == "file"
        assert abs(result.best_plane_fit - focus) <= 0.5
        assert result.best_z_um == pytest.approx(result.best_plane_fit * 2.0)
        assert result.planes[focus].prediction.defocus_level <= 1 and result.best_plane_certainty > 0.3
        levels = [plane.prediction.defocus_level for plane in result.planes]
        assert all(abs(level - min(abs(index - focus), 10)) <= 1 for index, level in enumerate(levels)), levels


@pytest.mark.slow
def test_a_channel_without_content_has_no_best_plane(synthetic_stack, model):
    path, _ = synthetic_stack
    (result, _) = predict_stack(path, model)  # channel 0, "empty", by default
    assert result.channel_name == "empty" and result.best_plane is None and not result.measured
    assert all("no content" in str(plane.error) for plane in result.planes)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_the_command_writes_planes_stacks_best_planes_and_curves(synthetic_stack, tmp_path, capsys):
    path, data = synthetic_stack
    out = tmp_path / "out"
    assert main(["stack", str(path), "--channel", "1", "--csv", str(out / "planes.csv"), "--best-dir",
                 str(out / "best"), "--plots", str(out / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "well_A01_t0: best plane 3 of 11" in printed and "well_A01_t1: best plane 6 of 11" in printed
    planes = _read_csv(out / "planes.csv")
    assert len(planes) == 2 * PLANES and {row["channel"] for row in planes} == {"nuclei"}
    assert [row["plane"] for row in planes if row["best"] == "1"] == ["3", "6"]
    assert float(planes[5]["z_um"]) == pytest.approx(10.0)
    stacks = _read_csv(out / "planes_stacks.csv")
    assert [(row["time"], row["best_plane"]) for row in stacks] == [("0", "3"), ("1", "6")]
    for time, focus in enumerate(FOCUS):
        best = tifffile.TiffFile(out / "best" / f"well_A01_t{time}_best.tif")
        # Every channel's plane at the best z, with the source's pixel size.
        np.testing.assert_array_equal(best.asarray(), data[time, :, focus])
        assert best.imagej_metadata["unit"] == "micron"
        assert best.pages[0].tags["XResolution"].value[0] / best.pages[0].tags["XResolution"].value[1] == \
            pytest.approx(1 / 0.65)
        assert (out / "plots" / f"well_A01_t{time}_focus_curve.png").stat().st_size > 10_000


@pytest.mark.slow
def test_stacks_that_cannot_be_measured_are_nan_rows_and_the_run_goes_on(synthetic_stack, tmp_path, capsys):
    path, _ = synthetic_stack
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not really a tiff")
    csv_path = tmp_path / "p.csv"
    assert main(["stack", str(broken), str(path), "--channel", "empty", "--csv", str(csv_path)]) == 0
    captured = capsys.readouterr()
    assert "broken.tif" in captured.err and "(NaN row)" in captured.err and "no plane could be measured" in captured.err
    stacks = _read_csv(tmp_path / "p_stacks.csv")
    assert [row["best_plane"] for row in stacks] == ["nan", "nan", "nan"]
    assert main(["stack", str(path), "--channel", "GFP", "--csv", str(csv_path)]) == 0
    assert "no channel 'GFP'" in capsys.readouterr().err


def test_outputs_never_replace_inputs(synthetic_stack, tmp_path, capsys):
    path, _ = synthetic_stack
    before = path.read_bytes()
    assert main(["stack", str(path), "--csv", str(path)]) == 1
    assert main(["stack", str(path), "--csv", str(tmp_path / "a.csv"), "--summary-csv", str(tmp_path / "a.csv")]) == 1
    err = capsys.readouterr().err
    assert "is an input" in err and "are the same file" in err
    assert path.read_bytes() == before


# --- the real stack ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_real_stack_best_plane_agrees_with_normalized_variance(shared_data_zstack, tmp_path):
    """A model fine-tuned for the stack's optics (as docs/model.md shows), then `focusnet stack` on every plane."""
    from focusnet.images import read_stack
    from focusnet.stack import normalized_variance

    planes = read_stack(shared_data_zstack).planes
    sharpest = int(np.nanargmax(normalized_variance(planes)))
    plane_path = tmp_path / "sharpest.tif"
    assert main(["evaluate-stack", str(shared_data_zstack), "--sharpest-out", str(plane_path)]) == 0
    optics = ["--na", "1.45", "--refractive-index", "1.512", "--wavelength", "0.461"]
    assert main(["train", "--init", "--images", str(plane_path), "--out", str(tmp_path / "model"), "--steps", "1000",
                 *optics]) == 0
    assert main(["stack", str(shared_data_zstack), "--model", str(tmp_path / "model"), "--csv",
                 str(tmp_path / "planes.csv"), *optics]) == 0
    (row,) = _read_csv(tmp_path / "planes_stacks.csv")
    assert abs(int(row["best_plane"]) - sharpest) <= 1, (row, sharpest)
    assert row["pixel_size_source"] == "file" and float(row["z_step_um"]) == pytest.approx(0.3)


@pytest.mark.slow
def test_the_throughput_benchmark_runs(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "stacks.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "stacks.py"), "--smoke", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())["stacks"]
    assert row["best_plane"] == row["true_focus"]
    assert row["library_planes_per_s"] > 0 and row["command_planes_per_s"] > 0
    assert "planes/s" in result.stdout
