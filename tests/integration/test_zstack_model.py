"""focusnet stack with the shipped model: the best plane of every z-stack, the command's outputs, the benchmark.

The logic that needs no model (choosing and refining the best plane, reading stacks) is in
tests/unit/test_zstack.py."""

import csv

import numpy as np
import pytest
import tifffile

from conftest import SYNTHETIC_STACK_FOCUS, SYNTHETIC_STACK_PLANES
from focusnet.cli import main
from focusnet.stacks import predict_stack

#: synthetic_stack (tests/conftest.py): its planes, and the focal plane of each time point.
PLANES = SYNTHETIC_STACK_PLANES
FOCUS = SYNTHETIC_STACK_FOCUS


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


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


def test_a_channel_without_content_has_no_best_plane(synthetic_stack, model):
    path, _ = synthetic_stack
    (result, _) = predict_stack(path, model)  # channel 0, "empty", by default
    assert result.channel_name == "empty" and result.best_plane is None and not result.measured
    assert all("no content" in str(plane.error) for plane in result.planes)


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


def test_the_real_stack_best_plane_agrees_with_normalized_variance(shared_data_zstack, tmp_path):
    """A model fine-tuned for the stack's optics (as docs/model.md shows), then `focusnet stack` on every plane."""
    from focusnet.images import read_stack
    from focusnet.stacks import normalized_variance

    planes = read_stack(shared_data_zstack).data[0, 0]
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
