"""Reading single-channel images and refusing everything else clearly."""

import shutil

import imageio.v2 as imageio
import numpy as np
import pytest
import tifffile

from focusnet.images import ImageFormatError, find_images, read_image, write_tiff


@pytest.fixture
def ramp():
    return (np.arange(60 * 80, dtype=np.uint32).reshape(60, 80) * 13 % 65536).astype(np.uint16)


@pytest.mark.parametrize("compression", [None, "lzw", "zlib"])
def test_16_bit_tiff_round_trips(tmp_path, ramp, compression):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, ramp, compression=compression)
    image = read_image(path)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, ramp)


def test_16_bit_png(tmp_path, ramp):
    path = tmp_path / "image.png"
    imageio.imwrite(path, ramp)
    image = read_image(path)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, ramp)


def test_decoder_is_chosen_by_content(tmp_path, in_focus_paths):
    # The shared BBBC006 files are TIFFs named .png.
    copy = tmp_path / "really_a_tiff.png"
    shutil.copy(in_focus_paths[0], copy)
    image = read_image(copy)
    assert image.shape == (520, 696) and image.dtype == np.uint16


def test_real_lzw_tiff(out_of_focus_paths):
    with tifffile.TiffFile(out_of_focus_paths[0]) as tif:
        compression = tif.pages[0].compression
    image = read_image(out_of_focus_paths[0])
    assert image.shape == (520, 696) and image.dtype == np.uint16
    assert compression.name == "LZW"


def test_single_page_stack_is_accepted(tmp_path, ramp):
    path = tmp_path / "one_plane.tif"
    tifffile.imwrite(path, ramp[None])
    assert read_image(path).shape == ramp.shape


def test_write_tiff_keeps_type(tmp_path, ramp):
    write_tiff(tmp_path / "out.tif", ramp)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), ramp)


def test_rgb_is_refused_with_file_and_shape(tmp_path):
    path = tmp_path / "colour.png"
    imageio.imwrite(path, np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(ImageFormatError, match=r"colour\.png: an RGB colour image of shape \(40, 50, 3\)"):
        read_image(path)


def test_multi_plane_tiff_is_refused(tmp_path, ramp):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.stack([ramp, ramp, ramp]))
    with pytest.raises(ImageFormatError, match=r"stack\.tif: a multi-plane.*\(3, 60, 80\)"):
        read_image(path)


def test_non_numeric_tiff_is_refused(tmp_path):
    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, np.ones((20, 20), np.complex64))
    with pytest.raises(ImageFormatError, match=r"complex\.tif: pixel type complex64 is not numeric"):
        read_image(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 20)
    with pytest.raises(ImageFormatError, match=r"broken\.tif: cannot be read as an image"):
        read_image(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such image file"):
        read_image("/nonexistent/image.tif")


def test_find_images_expands_folders_and_globs(tmp_path, ramp):
    for name in ("b.tif", "a.png", "c.TIFF"):
        write_tiff(tmp_path / name, ramp)
    (tmp_path / "notes.txt").write_text("not an image")
    folder = find_images([tmp_path])
    assert [p.rsplit("/", 1)[1] for p in folder] == ["a.png", "b.tif", "c.TIFF"]
    assert find_images([str(tmp_path / "*.tif"), str(tmp_path / "b.tif")]) == [str(tmp_path / "b.tif")]
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_images([str(tmp_path / "*.jpg")])
