"""Every command as safe as predict: bad input and outputs get one clear line, nothing is overwritten or lost.

Grouped by command; each case was reproduced as a traceback, a lost file or a silently wrong answer before
its fix (the reproductions are in the issue). ``run`` calls the command line in this process and returns its
exit code and what it printed to stderr.
"""

import csv
import shutil

import numpy as np
import pytest
import tifffile

from conftest import read_csv
from focusnet.cli import main


def run(capsys, *arguments):
    code = main([str(argument) for argument in arguments])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def write_stack(path, planes=4, shape=(96, 96), **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.random.default_rng(0).poisson(200, (planes,) + shape) + 100).astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"}, **options)
    return path


# --- export ------------------------------------------------------------------------------------

@pytest.mark.parametrize("export_format", ["onnx", "bundle"])
@pytest.mark.parametrize("target", ["weights.npz", ".", "new/model.onnx"])
def test_export_never_writes_into_the_model_folder(capsys, model_copy, export_format, target):
    before = {path.name: path.read_bytes() for path in model_copy.iterdir() if path.is_file()}
    code, err = run(capsys, "export", "--format", export_format, "--model", model_copy, "--out",
                    model_copy / target, "--overwrite")
    assert code == 1 and "inside the model folder" in err
    assert {path.name: path.read_bytes() for path in model_copy.iterdir() if path.is_file()} == before


def test_export_refuses_an_output_under_a_file_before_building(capsys, tmp_path, random_model_dir):
    (tmp_path / "a file").write_text("x")
    code, err = run(capsys, "export", "--format", "onnx", "--model", random_model_dir, "--out",
                    tmp_path / "a file" / "model.onnx")
    assert code == 1 and "is a file, not a folder" in err and "(--out)" in err


# --- plate -------------------------------------------------------------------------------------

def _results(path, rows):
    columns = ["image", "defocus_level", "aggregate_certainty"]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("content, expected", [
    ("image,defocus_level,aggregate_certainty\n\xe9t\xe9_A01.tif,1,0.9\n".encode("latin-1"), "not UTF-8"),
    (b"image,defocus_level,aggregate_certainty\nA01\x00.tif,1,0.9\n", "NUL bytes"),
    (b"II*\x00\x08\x00\x00\x00" + bytes(64), "NUL bytes"),  # a TIFF given as the table
    (b'image,defocus_level\n"' + b"x" * 200000 + b'",1\n', "csv module"),
])
def test_plate_names_a_file_that_is_not_a_csv_table(capsys, tmp_path, content, expected):
    table = tmp_path / "results.csv"
    table.write_bytes(content)
    code, err = run(capsys, "plate", table, "--out", tmp_path / "map")
    assert code == 1 and str(table) in err and expected in err
    assert not (tmp_path / "map").exists()


def test_plate_refuses_a_folder_as_the_table_and_an_output_under_a_file(capsys, tmp_path):
    code, err = run(capsys, "plate", tmp_path, "--out", tmp_path / "map")
    assert code == 1 and "is a folder" in err
    table = _results(tmp_path / "results.csv", [["x_A01_s1.tif", 0, 0.9]])
    code, err = run(capsys, "plate", table, "--out", table / "map")
    assert code == 1 and "is a file, not a folder" in err


def test_plate_counts_impossible_levels_as_not_measured_and_names_them(capsys, tmp_path):
    table = _results(tmp_path / "results.csv", [["x_A01_s1.tif", 99, 0.9], ["x_A02_s1.tif", -3, 0.9],
                                                ["x_A03_s1.tif", "inf", 0.9], ["x_A04_s1.tif", 2.5, 0.9],
                                                ["x_A05_s1.tif", 1, 7], ["x_A06_s1.tif", 4, 0.8]])
    code, err = run(capsys, "plate", table, "--out", tmp_path / "map", "--montage", 0)
    assert code == 0
    for name in ("x_A01_s1.tif", "x_A02_s1.tif", "x_A03_s1.tif", "x_A04_s1.tif", "x_A05_s1.tif"):
        assert name in err
    wells = {row["well"]: row for row in read_csv(tmp_path / "map" / "wells.csv")}
    assert [wells[f"A0{i}"]["measured_sites"] for i in range(1, 6)] == ["0"] * 4 + ["1"]
    assert wells["A05"]["mean_aggregate_certainty"] == "nan" and float(wells["A06"]["worst_level"]) == 4


def test_plate_refuses_one_site_twice(capsys, tmp_path):
    table = _results(tmp_path / "twice.csv", [["x_A01_s1.tif", 0, 0.9], ["x_A01_s1.tif", 0, 0.9]])
    code, err = run(capsys, "plate", table, "--out", tmp_path / "map")
    assert code == 1 and "lines 2 and 3" in err and "twice" in err
    table = _results(tmp_path / "plates.csv", [["p1/x_A01_s1.tif", 0, 0.9], ["p2/y_A01_s1.tif", 5, 0.9]])
    code, err = run(capsys, "plate", table, "--out", tmp_path / "map")
    assert code == 1 and "two plates" in err


def test_plate_refuses_a_negative_montage(capsys, tmp_path):
    table = _results(tmp_path / "results.csv", [["x_A01_s1.tif", 0, 0.9]])
    with pytest.raises(SystemExit):
        main(["plate", str(table), "--out", str(tmp_path / "map"), "--montage", "-1"])
    assert "must be >= 0" in capsys.readouterr().err


# --- stack and evaluate-stack ------------------------------------------------------------------

@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_a_z_step_that_is_not_a_finite_positive_number_is_refused(capsys, tmp_path, value):
    stack = write_stack(tmp_path / "s.tif")
    with pytest.raises(SystemExit):
        main(["stack", str(stack), "--csv", str(tmp_path / "planes.csv"), "--z-step", value])
    assert "finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "planes.csv").exists()


def test_a_truncated_stack_is_named_as_such(capsys, tmp_path, random_model_dir):
    whole = write_stack(tmp_path / "whole.tif", planes=9)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    code, err = run(capsys, "stack", cut, "--csv", tmp_path / "planes.csv", "--model", random_model_dir)
    assert code == 0 and "states 9 planes but only" in err and "truncated" in err
    assert read_csv(tmp_path / "planes_stacks.csv")[0]["measured_planes"] == "0"


def test_pages_of_two_sizes_are_not_read_as_a_shorter_stack(capsys, tmp_path, random_model_dir):
    mixed = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(mixed) as writer:
        for shape, count in (((64, 64), 3), ((32, 32), 6)):
            for _ in range(count):
                writer.write(np.full(shape, 100, np.uint16))
    code, err = run(capsys, "stack", mixed, "--csv", tmp_path / "planes.csv", "--model", random_model_dir)
    assert code == 0 and "of its 9 pages" in err


def test_evaluate_stack_on_a_folder_says_it_is_a_folder(capsys, tmp_path):
    code, err = run(capsys, "evaluate-stack", tmp_path)
    assert code == 1 and "is a folder" in err and "focusnet stack" in err


@pytest.mark.parametrize("flag", ["--plots", "--best-dir"])
def test_stack_output_folders_under_a_file_are_refused_before_measuring(capsys, tmp_path, random_model_dir, flag):
    stack = write_stack(tmp_path / "s.tif")
    (tmp_path / "a file").write_text("x")
    code, err = run(capsys, "stack", stack, "--csv", tmp_path / "planes.csv", flag, tmp_path / "a file" / "sub",
                    "--model", random_model_dir)
    assert code == 1 and "is a file, not a folder" in err and f"({flag})" in err
    assert not list(tmp_path.glob("planes*"))  # no table, no journal: nothing was measured


def test_evaluate_stack_plots_under_a_file_are_refused_before_measuring(capsys, tmp_path, random_model_dir):
    stack = write_stack(tmp_path / "s.tif")
    (tmp_path / "a file").write_text("x")
    code, err = run(capsys, "evaluate-stack", stack, "--z-step", 1, "--plots", tmp_path / "a file",
                    "--model", random_model_dir)
    assert code == 1 and "is a file, not a folder" in err and "(--plots)" in err
    assert capsys.readouterr().out == ""


def test_predict_overlay_folder_under_a_file_is_refused(capsys, tmp_path, two_sharp_images, random_model_dir):
    (tmp_path / "a file").write_text("x")
    code, err = run(capsys, "predict", two_sharp_images, "--csv", tmp_path / "focus.csv", "--overlay-dir",
                    tmp_path / "a file" / "overlays", "--model", random_model_dir)
    assert code == 1 and "(--overlay-dir)" in err


# --- resume journals (predict, stack, refocus share focusnet.journal) --------------------------------------------

def predict_stopped_after_one_image(monkeypatch, arguments):
    """Run ``focusnet predict`` with Ctrl-C arriving as the second image starts: its journal holds one image."""
    import focusnet.batch

    measure = focusnet.batch.measure_entry
    calls = []

    def stop_at_the_second(*positional, **options):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return measure(*positional, **options)

    with monkeypatch.context() as patch:
        patch.setattr(focusnet.batch, "measure_entry", stop_at_the_second)
        assert main(["predict", *map(str, arguments)]) == 130


@pytest.fixture
def interrupted_batch(tmp_path, crops, monkeypatch, capsys):
    """A predict run of three real crops stopped by Ctrl-C after the first."""
    from focusnet.images import write_tiff

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        write_tiff(folder / f"img_{index}.tif", crops[index])
    out = tmp_path / "focus.csv"
    predict_stopped_after_one_image(monkeypatch, [folder, "--csv", out])
    assert "--resume" in capsys.readouterr().err
    return folder, out


def _fresh_rows(folder, tmp_path):
    fresh = tmp_path / "fresh.csv"
    assert main(["predict", str(folder), "--csv", str(fresh)]) == 0
    return read_csv(fresh)


def test_resume_measures_again_an_input_replaced_since(capsys, tmp_path, crops, interrupted_batch):
    from focusnet.images import write_tiff

    folder, out = interrupted_batch
    # The same name, another image of the same size: only its content tells them apart.
    write_tiff(folder / "img_0.tif", crops[-1])
    code, err = run(capsys, "predict", folder, "--csv", out, "--resume")
    assert code == 0 and "img_0.tif changed since it was measured: measured again" in err
    assert read_csv(out) == _fresh_rows(folder, tmp_path)


def test_resume_measures_again_an_edited_or_damaged_line(capsys, tmp_path, interrupted_batch):
    import json

    from focusnet.journal import journal_path

    folder, out = interrupted_batch
    journal = journal_path(out)
    header, line = journal.read_text().splitlines()
    entry = json.loads(line)
    entry["record"]["defocus_level"] = 10  # hand-edited: still valid JSON, same key
    journal.write_text(header + "\n" + json.dumps(entry) + "\n" + '["not", "an", "entry"]\n')
    code, err = run(capsys, "predict", folder, "--csv", out, "--resume")
    assert code == 0 and "2 line(s)" in err and "edited or damaged" in err
    assert read_csv(out) == _fresh_rows(folder, tmp_path)


def test_resume_refuses_an_onnx_model_whose_graph_changed(capsys, tmp_path, crops, monkeypatch):
    pytest.importorskip("onnxruntime")
    import json

    import onnx

    from focusnet.classifier import onnx_manifest_sha256
    from focusnet.contract import ONNX_MANIFEST_KEY
    from focusnet.images import write_tiff

    first = tmp_path / "a.onnx"
    assert main(["export", "--format", "onnx", "--out", str(first)]) == 0
    proto = onnx.load(first)
    proto.graph.initializer[-1].raw_data = bytes(len(proto.graph.initializer[-1].raw_data))  # other weights
    manifest = json.loads({p.key: p.value for p in proto.metadata_props}[ONNX_MANIFEST_KEY])
    manifest["sha256"] = onnx_manifest_sha256(proto, manifest["model_config"])  # a consistent, other model
    onnx.helper.set_model_props(proto, {ONNX_MANIFEST_KEY: json.dumps(manifest)})
    second = tmp_path / "b.onnx"
    second.write_bytes(proto.SerializeToString())
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        write_tiff(folder / f"img_{index}.tif", crops[index])
    model = tmp_path / "model.onnx"
    shutil.copy(first, model)
    out = tmp_path / "focus.csv"
    predict_stopped_after_one_image(monkeypatch, [folder, "--csv", out, "--model", model])
    capsys.readouterr()
    shutil.copy(second, model)  # the same path and config, another graph
    code, err = run(capsys, "predict", folder, "--csv", out, "--model", model, "--resume")
    assert code == 1 and "differs" in err and "'model'" in err and "run the same command" not in err


# --- models given as files, and evaluate -------------------------------------------------------------------------

@pytest.mark.parametrize("content, expected", [(b"", "an empty file"), (b"PK\x03\x04 cut short", "a damaged zip")])
def test_an_empty_or_damaged_zip_model_is_named_as_such(capsys, tmp_path, two_sharp_images, content, expected):
    model = tmp_path / "model.zip"
    model.write_bytes(content)
    code, err = run(capsys, "predict", two_sharp_images, "--csv", tmp_path / "f.csv", "--model", model)
    assert code == 1 and f"{model}: {expected}" in err and "folder not found" not in err


def test_an_unzipped_bundle_folder_is_a_model(capsys, tmp_path, two_sharp_images):
    import zipfile

    from focusnet.contract import SHIPPED_BUNDLE

    with zipfile.ZipFile(SHIPPED_BUNDLE) as archive:
        archive.extractall(tmp_path / "bundle")
    code, err = run(capsys, "predict", two_sharp_images, "--csv", tmp_path / "f.csv", "--model", tmp_path / "bundle")
    assert code == 0 and len(read_csv(tmp_path / "f.csv")) == 2


def test_evaluate_gives_no_accuracy_when_nothing_could_be_measured(capsys, tmp_path):
    from focusnet.images import write_tiff

    folder = tmp_path / "empty fields"
    folder.mkdir()
    write_tiff(folder / "dark.tif", (np.random.default_rng(1).poisson(20, (260, 348)) + 100).astype(np.uint16))
    code, err = run(capsys, "evaluate", folder)
    assert code == 1 and "none of the 11 simulated images could be measured" in err
    assert "0.0 %" not in capsys.readouterr().out
