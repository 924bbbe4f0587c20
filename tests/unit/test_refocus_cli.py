"""focusnet refocus: outputs, the CSV contract, the refusal rules, calibration, resume."""

import shutil

import numpy as np
import pytest
import tifffile

from conftest import read_csv
from focusnet.cli import main
from focusnet.errors import InvalidParameterError
from focusnet.images import read_image_file
from focusnet.optics import Optics
from focusnet.refocus.batch import REFOCUS_COLUMNS, plan_refocus
from focusnet.simulate import degrade


@pytest.fixture(scope="module")
def refocus_inputs(tmp_path_factory, in_focus_image):
    """An in-focus image, a defocused one (level 3, calibrated 0.65 um) and one that cannot be read."""
    folder = tmp_path_factory.mktemp("refocus_inputs")
    crop = in_focus_image[:260, :350]
    tifffile.imwrite(folder / "sharp.tif", crop)
    blurred = degrade(crop, 3, seed=5, optics=Optics(defocus_phase="paraxial"))
    tifffile.imwrite(folder / "blurred.tif", blurred, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"unit": "micron"})
    (folder / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    tifffile.imwrite(folder / "stack.tif", np.stack([crop, blurred]), photometric="minisblack")
    return folder


def _run(tmp_path, inputs, model_dir, *options):
    out, table = tmp_path / "out", tmp_path / "refocus.csv"
    status = main(["refocus", str(inputs), "--out", str(out), "--csv", str(table), "--refocus-model", str(model_dir),
                   *options])
    return status, out, table


def test_refocus_writes_images_of_the_input_type_and_calibration_and_one_row_each(tmp_path, refocus_inputs,
                                                                                   refocus_model_dir, capsys):
    status, out, table = _run(tmp_path, refocus_inputs, refocus_model_dir, "--montage-dir", str(tmp_path / "m"))
    assert status == 0
    rows = {row["image"].split("/")[-1]: row for row in read_csv(table)}
    assert list(next(iter(rows.values()))) == REFOCUS_COLUMNS
    assert rows["blurred.tif"]["refocused"] == "yes" and rows["blurred.tif"]["improved"] in ("yes", "no")
    assert rows["sharp.tif"]["refocused"] == "no" and "in focus" in rows["sharp.tif"]["reason"]
    assert rows["broken.tif"]["refocused"] == "no" and rows["broken.tif"]["output"] == ""
    assert rows["broken.tif"]["defocus_level_before"] == "nan"
    assert rows["stack.tif"]["refocused"] == "no" and "multi-plane" in rows["stack.tif"]["reason"]
    refocused = read_image_file(out / "blurred_refocused.tif")
    assert refocused.pixels.dtype == np.uint16 and refocused.pixels.shape == (260, 350)
    assert refocused.pixel_size_um == pytest.approx(0.65)
    assert rows["blurred.tif"]["pixel_size_source"] == "file"
    # Not refocused: copied unchanged by default.
    np.testing.assert_array_equal(read_image_file(out / "sharp_refocused.tif").pixels,
                                  read_image_file(refocus_inputs / "sharp.tif").pixels)
    assert (tmp_path / "m" / "blurred_refocus.png").is_file()
    assert "cannot be read" in capsys.readouterr().err


def test_skip_leaves_images_that_are_not_refocused_out(tmp_path, refocus_inputs, refocus_model_dir):
    status, out, table = _run(tmp_path, refocus_inputs, refocus_model_dir, "--not-refocused", "skip")
    assert status == 0 and sorted(p.name for p in out.iterdir()) == ["blurred_refocused.tif"]
    assert len(read_csv(table)) == 4  # every image has its row


def test_outputs_never_replace_inputs_or_each_other(tmp_path, refocus_inputs):
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(refocus_inputs / "blurred.tif", other / "blurred.tif")
    with pytest.raises(InvalidParameterError, match="would share the output"):
        plan_refocus([refocus_inputs, other], tmp_path / "out", tmp_path / "t.csv")
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(refocus_inputs / "blurred.tif", own / "x_refocused.tif")
    shutil.copy(refocus_inputs / "blurred.tif", own / "x.tif")
    with pytest.raises(InvalidParameterError, match="would replace the input"):
        plan_refocus([own], own, tmp_path / "t.csv")
    with pytest.raises(InvalidParameterError, match="is an input image"):
        plan_refocus([own], tmp_path / "out", own / "x.tif")
    with pytest.raises(InvalidParameterError, match="would be replaced by the output"):
        plan_refocus([refocus_inputs], tmp_path, tmp_path / "sharp_refocused.tif")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidParameterError, match="is a file, not a folder"):
        plan_refocus([own], tmp_path / "afile", tmp_path / "t.csv")


def test_a_refused_run_names_the_flag_and_touches_nothing(tmp_path, refocus_inputs, refocus_model_dir, capsys):
    before = {p.name: p.read_bytes() for p in refocus_inputs.iterdir()}
    status, out, _ = _run(tmp_path, refocus_inputs, refocus_model_dir, "--csv", str(refocus_inputs / "sharp.tif"))
    assert status == 1 and "--csv" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in refocus_inputs.iterdir()} == before and not out.exists()


def test_an_interrupted_run_resumes_to_the_same_table(tmp_path, refocus_inputs, refocus_model_dir, monkeypatch):
    from focusnet.refocus import batch

    whole = tmp_path / "whole"
    whole.mkdir()
    assert _run(whole, refocus_inputs, refocus_model_dir)[0] == 0
    calls, original = [], batch.refocus_entry

    def failing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(path, *args, **kwargs)

    monkeypatch.setattr(batch, "refocus_entry", failing)
    status, out, table = _run(tmp_path, refocus_inputs, refocus_model_dir)
    assert status != 0 and not table.exists() and table.with_name("refocus.csv.journal").is_file()
    monkeypatch.setattr(batch, "refocus_entry", original)
    assert _run(tmp_path, refocus_inputs, refocus_model_dir, "--resume")[0] == 0
    resumed, uninterrupted = read_csv(table), read_csv(whole / "refocus.csv")
    drop = ("image", "output", "seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed] == \
        [{k: v for k, v in r.items() if k not in drop} for r in uninterrupted]
