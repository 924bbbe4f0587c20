"""focusnet stack as a batch: outputs checked before any work, each stack journaled, --resume, clear errors."""

import numpy as np
import pytest
import tifffile

from focusnet.cli import main
from focusnet.errors import InvalidParameterError
from focusnet.journal import journal_path
from focusnet.stacks import batch as stack_batch
from focusnet.stacks.batch import plan_stacks, run_stacks

PLANES = 5


def _write_stack(path, in_focus_image, focus):
    """A small real-image stack, sharpest at plane ``focus``: the crop blurred by its distance from it."""
    from focusnet.optics import Optics
    from focusnet.simulate import AS_IMAGED, blur_levels

    crop = in_focus_image[:170, :170].astype(float)
    blurred = blur_levels(crop, range(PLANES), Optics(defocus_phase="paraxial"))
    rng = np.random.default_rng(focus)
    data = np.stack([AS_IMAGED.apply(blurred[abs(plane - focus)], crop.min(), rng) for plane in range(PLANES)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, data.astype(np.uint16), imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"})
    return path


@pytest.fixture(scope="module")
def stacks(tmp_path_factory, in_focus_image):
    folder = tmp_path_factory.mktemp("stacks")
    return [_write_stack(folder / name, in_focus_image, focus) for name, focus in
            (("a.tif", 1), ("b.tif", 3), ("c.tif", 2))]


def test_same_named_stacks_in_two_folders_are_refused_before_anything_is_written(tmp_path, in_focus_image, capsys):
    first = _write_stack(tmp_path / "A" / "s.tif", in_focus_image, 1)
    second = _write_stack(tmp_path / "B" / "s.tif", in_focus_image, 3)
    out = tmp_path / "out"
    out.mkdir()
    code = main(["stack", str(first), str(second), "--csv", str(out / "planes.csv"), "--best-dir", str(out)])
    assert code == 1
    error = capsys.readouterr().err
    assert "would share the output" in error and "s_best.tif" in error and "(--best-dir)" in error
    assert sorted(p.name for p in out.iterdir()) == []
    # Without per-stack outputs nothing clashes: both are measured, each under its own path.
    assert main(["stack", str(first), str(second), "--csv", str(out / "planes.csv")]) == 0


def test_an_output_that_would_replace_an_input_stack_is_refused(tmp_path, in_focus_image):
    stack = _write_stack(tmp_path / "x.tif", in_focus_image, 1)
    victim = _write_stack(tmp_path / "x_best.tif", in_focus_image, 1)
    with pytest.raises(InvalidParameterError, match="would replace the input") as raised:
        plan_stacks([str(stack), str(victim)], tmp_path / "planes.csv", best_dir=tmp_path)
    assert raised.value.setting == "best_dir"
    plan_stacks([str(stack), str(victim)], tmp_path / "planes.csv", best_dir=tmp_path / "best")


def test_an_interrupted_stack_run_resumes_to_the_tables_of_an_uninterrupted_one(stacks, model, tmp_path, monkeypatch,
                                                                               capsys):
    whole = tmp_path / "whole" / "planes.csv"
    whole.parent.mkdir()
    run_stacks(plan_stacks([str(p) for p in stacks], whole), model)
    expected = whole.read_bytes(), whole.with_name("planes_stacks.csv").read_bytes()

    out = tmp_path / "cut" / "planes.csv"
    out.parent.mkdir()
    arguments = ["stack", *map(str, stacks), "--csv", str(out), "--plots", str(out.parent / "curves")]
    measured = []
    real_measure = stack_batch._measure_stack

    def measure_then_stop(path, *rest):
        if len(measured) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the third stack is measured
        measured.append(path)
        return real_measure(path, *rest)

    monkeypatch.setattr(stack_batch, "_measure_stack", measure_then_stop)
    assert main(arguments) == 130
    error = capsys.readouterr().err
    assert "stopped by SIGINT" in error and "--resume" in error and str(journal_path(out)) in error
    assert not out.exists() and journal_path(out).is_file()
    assert sorted(p.name for p in (out.parent / "curves").iterdir()) == ["a_focus_curve.png", "b_focus_curve.png"]

    # Running it again without --resume would lose nothing either: it is refused with what to do.
    assert main(arguments) == 1
    assert "resume that run" in capsys.readouterr().err
    monkeypatch.setattr(stack_batch, "_measure_stack", real_measure)
    assert main(arguments + ["--resume"]) == 0
    assert (out.read_bytes(), out.with_name("planes_stacks.csv").read_bytes()) == expected
    assert not journal_path(out).exists()


def test_resuming_with_other_settings_or_without_a_journal_is_refused(stacks, model, tmp_path):
    out = tmp_path / "planes.csv"
    with pytest.raises(InvalidParameterError, match="no unfinished run to resume") as raised:
        run_stacks(plan_stacks([str(stacks[0])], out), model, resume=True)
    assert raised.value.setting == "resume"
    journal = journal_path(out)
    with pytest.raises(KeyboardInterrupt):
        def stop(entry):
            raise KeyboardInterrupt
        run_stacks(plan_stacks([str(p) for p in stacks], out), model, on_entry=stop)
    assert journal.is_file()
    with pytest.raises(InvalidParameterError, match=r"differs .* in \['z_step_um'\]"):
        run_stacks(plan_stacks([str(p) for p in stacks], out), model, z_step_um=1.0, resume=True)


def test_a_journal_whose_tables_had_other_columns_is_refused(stacks, model, tmp_path, monkeypatch):
    # A run interrupted under a focusnet whose plane table lacked a column cannot be finished by this one.
    import focusnet.stacks.batch as batch

    out = tmp_path / "planes.csv"
    monkeypatch.setattr(batch, "STACK_PLANE_COLUMNS", batch.STACK_PLANE_COLUMNS[:-1])
    with pytest.raises(KeyboardInterrupt):
        def stop(entry):
            raise KeyboardInterrupt
        run_stacks(plan_stacks([str(p) for p in stacks], out), model, on_entry=stop)
    monkeypatch.undo()
    with pytest.raises(InvalidParameterError, match=r"differs .* in \['columns'\]"):
        run_stacks(plan_stacks([str(p) for p in stacks], out), model, resume=True)


def test_a_plane_too_dim_to_judge_is_a_nan_row_with_its_reason(tmp_path, in_focus_image, model):
    import csv

    from focusnet.photons import binomial_thinning, photon_transfer

    path = _write_stack(tmp_path / "dim.tif", in_focus_image, 2)
    planes = tifffile.imread(path)
    gain, offset = photon_transfer(planes.reshape(-1, planes.shape[-1]))
    planes[4] = binomial_thinning(planes[4], 0.005, offset, gain, np.random.default_rng(0))  # 1/200 of its light
    tifffile.imwrite(path, planes, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"})
    out = tmp_path / "planes.csv"
    run_stacks(plan_stacks([str(path)], out), model)
    rows = list(csv.DictReader(out.open()))
    assert [row["reason"] for row in rows] == ["", "", "", "", "too noisy"]
    assert rows[4]["defocus_level"] == "nan" and float(rows[4]["judged_fraction"]) == 0
    assert [row["best"] for row in rows].index("1") == 2


def test_a_stack_that_cannot_be_read_is_a_nan_row_and_a_warning(stacks, tmp_path, capsys):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00 not a tiff")
    out = tmp_path / "planes.csv"
    assert main(["stack", str(stacks[0]), str(broken), "--csv", str(out)]) == 0
    captured = capsys.readouterr()
    assert "broken.tif" in captured.err and "(NaN row)" in captured.err
    rows = out.with_name("planes_stacks.csv").read_text().splitlines()
    assert rows[2].startswith(f"{broken},nan,nan,0,0,nan")
    assert "1 stack(s) with a best plane, 1 without" in captured.out
