"""focusnet stack: the best plane of z-stacks (channels, time points), focus curves, best-plane TIFFs."""


import numpy as np
import pytest
import tifffile

from focusnet.cli import main
from focusnet.errors import ImageFormatError, InvalidParameterError
from focusnet.images import read_stack
from focusnet.stacks import best_plane, refine_best_plane

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
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.data, tczyx)
    assert (stack.z_step_um, stack.pixel_size_um) == (pytest.approx(0.5), pytest.approx(0.2))
    assert stack.channel_names == ["C0", "C1", "C2"] and stack.channel_index("2") == 2


def test_an_ome_tiff_gives_its_channel_names(tmp_path, tczyx):
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, tczyx[0], metadata={"axes": "CZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3,
                                                "PhysicalSizeZ": 1.5, "Channel": {"Name": ["DAPI", "GFP", "RFP"]}})
    stack = read_stack(path)
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
    stack = read_stack(plain)
    np.testing.assert_array_equal(stack.data[0, 0], tczyx[0, 0])
    assert "read as z" in stack.notes[0]
    # Two unnamed axes: which is z cannot be guessed, so the reader asks.
    tifffile.imwrite(plain, tczyx[0], photometric="minisblack")
    with pytest.raises(ImageFormatError, match="give the axes"):
        read_stack(plain)
    np.testing.assert_array_equal(read_stack(plain, axes="czyx").data[0], tczyx[0])
    np.testing.assert_array_equal(read_stack(plain, axes="ZCYX").data[0], np.swapaxes(tczyx[0], 0, 1))
    with pytest.raises(ImageFormatError, match="give the axes"):
        read_stack(plain, axes="ZYX")


def test_colour_and_single_planes_are_refused(tmp_path):
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((3, 40, 40, 3), np.uint8), photometric="rgb")
    with pytest.raises(ImageFormatError, match="colour"):
        read_stack(rgb)
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.zeros((40, 40), np.uint16))
    with pytest.raises(ImageFormatError, match="at least two"):
        read_stack(single)


# --- a synthetic stack from a real in-focus image -----------------------------------------------------


# --- the command's checks before measuring (synthetic_stack: tests/conftest.py) ------------------------------------


def test_outputs_never_replace_inputs(synthetic_stack, tmp_path, capsys):
    path, _ = synthetic_stack
    before = path.read_bytes()
    assert main(["stack", str(path), "--csv", str(path)]) == 1
    assert main(["stack", str(path), "--csv", str(tmp_path / "a.csv"), "--summary-csv", str(tmp_path / "a.csv")]) == 1
    err = capsys.readouterr().err
    assert "is an input" in err and "are the same file" in err
    assert path.read_bytes() == before
