"""Batch prediction as library code: paths in, one result per image, CSV rows out."""

import csv
import io
import shutil

import numpy as np
import pytest
import tifffile

from conftest import EXAMPLES, REPO
from focusnet import contract
from focusnet.batch import predict_paths
from focusnet.cli import main
from focusnet.errors import (
    ImageFormatError,
    InputNotFoundError,
    InvalidParameterError,
    ModelError,
    UnmeasurableImageError,
)
from focusnet.inference import predict_image
from focusnet.loader import load_model
from focusnet.records import cells, patch_records

EXPECTED = REPO / "tests" / "data" / "expected"


@pytest.fixture
def mixed_folder(tmp_path):
    """Two real images and three that cannot be measured."""
    folder = tmp_path / "images"
    folder.mkdir()
    for path in EXAMPLES.glob("*.tif"):
        shutil.copy(path, folder / path.name)
    tifffile.imwrite(folder / "a_tiny.tif", np.ones((50, 50), np.uint16))
    tifffile.imwrite(folder / "b_constant.tif", np.full((200, 200), 7, np.uint16))
    (folder / "c_broken.tif").write_bytes(b"II*\x00 not really a tiff")
    return folder


def test_each_image_gets_a_prediction_or_a_reason(mixed_folder, random_model_dir):
    results = list(predict_paths([mixed_folder], random_model_dir))
    by_name = {result.path.rsplit("/", 1)[-1]: result for result in results}
    assert [r.path for r in results] == sorted(r.path for r in results)
    assert isinstance(by_name["a_tiny.tif"].error, UnmeasurableImageError)
    assert isinstance(by_name["b_constant.tif"].error, UnmeasurableImageError)
    assert isinstance(by_name["c_broken.tif"].error, ImageFormatError)
    assert "c_broken.tif" in by_name["c_broken.tif"].reason
    measured = [r for r in results if r.measured]
    assert len(measured) == 2 and all(r.error is None and r.reason == "" for r in measured)
    expected = predict_image(measured[0].image, load_model(random_model_dir))
    np.testing.assert_array_equal(measured[0].prediction.distribution, expected.distribution)


def test_a_file_that_vanishes_mid_batch_is_one_result_with_a_reason(mixed_folder, random_model_dir):
    results = predict_paths([mixed_folder], random_model_dir)
    first = next(results)
    (mixed_folder / "b_constant.tif").unlink()
    rest = list(results)
    assert first.path.endswith("BBBC006_z_aligned__a07__s1__w1_10.tif")
    vanished = [r for r in rest if r.path.endswith("b_constant.tif")]
    assert len(vanished) == 1 and isinstance(vanished[0].error, FileNotFoundError)
    assert sum(r.measured for r in rest) == 1


def test_bad_arguments_are_raised_before_measuring(tmp_path, random_model_dir):
    with pytest.raises(InputNotFoundError, match="no such file"):
        predict_paths([tmp_path / "missing.tif"], random_model_dir)
    with pytest.raises(ModelError, match="model folder not found"):
        predict_paths([EXAMPLES], tmp_path / "no-model")


def test_rows_follow_the_contract(mixed_folder, random_model_dir):
    results = list(predict_paths([mixed_folder], random_model_dir))
    for result in results:
        row = cells(result.record(), contract.IMAGE_COLUMNS)
        assert len(row) == len(contract.IMAGE_COLUMNS) and row[0] == result.path
        patches = [cells(patch, contract.PATCH_COLUMNS) for patch in patch_records(result.path, result.prediction)] \
            if result.measured else []
        cell = dict(zip(contract.IMAGE_COLUMNS, row))
        if result.measured:
            assert cell["patches"] == str(result.prediction.num_patches) == str(len(patches))
            assert all(len(p) == len(contract.PATCH_COLUMNS) for p in patches)
            assert float(cell["aggregate_certainty"]) == pytest.approx(result.prediction.aggregate_certainty, abs=1e-8)
        else:
            measured = contract.IMAGE_COLUMNS[1:contract.IMAGE_COLUMNS.index("patches")]
            assert all(cell[column] == "nan" for column in measured) and patches == []
            assert cell["patches"] == str(getattr(result.error, "num_patches", 0))


def read_rows(text):
    return list(csv.reader(io.StringIO(text)))


#: Columns of the example tables compared exactly: text and whole numbers. The rest are floating-point
#: results, whose last digits differ between CPUs and TensorFlow builds.
EXACT_COLUMNS = {"image", "row", "col", "y", "x", "defocus_level", "patches", "content"}
#: How far a floating-point cell may be from the committed one.
TOLERANCE = 1e-5


def assert_cells_match(header, new, old):
    """Cells of ``header``'s columns: exact columns equal, the others equal within TOLERANCE."""
    assert len(new) >= len(header) and len(old) == len(header), (new, old)
    for column, got, expected in zip(header, new, old):
        if column in EXACT_COLUMNS:
            assert got == expected, (column, new, old)
        else:
            assert float(got) == pytest.approx(float(expected), abs=TOLERANCE, nan_ok=True), (column, new, old)


def test_predict_on_the_examples_keeps_the_numbers_of_before(tmp_path, monkeypatch):
    # The shipped model on the example images, as the README's quick start runs it, against the CSVs it
    # wrote when it was shipped (retrained with dim and confocal patches, issue 24). Columns are only added,
    # so every old column of a judged patch keeps its cell: text and whole numbers exactly, floating-point
    # numbers within 1e-5 (CPUs and TensorFlow versions round the last digits differently), and so does each
    # image's level.
    monkeypatch.chdir(REPO)
    out, patches = tmp_path / "focus.csv", tmp_path / "patches.csv"
    assert main(["predict", "examples/images", "--csv", str(out), "--patches-csv", str(patches)]) == 0
    images, old_images = read_rows(out.read_text()), read_rows((EXPECTED / "examples_focus.csv").read_text())
    assert images[0][:len(old_images[0])] == old_images[0]
    assert [(row[0], row[1]) for row in images[1:]] == [(row[0], row[1]) for row in old_images[1:]]
    rows, old_rows = read_rows(patches.read_text()), read_rows((EXPECTED / "examples_patches.csv").read_text())
    width = len(old_rows[0])
    assert rows[0][:width] == old_rows[0] and len(rows) == len(old_rows)
    judged_column = rows[0].index("judged")
    judged = [(new, old) for new, old in zip(rows[1:], old_rows[1:]) if new[judged_column] == "1"]
    assert len(judged) >= len(rows) // 2
    for new, old in judged:
        assert_cells_match(old_rows[0], new[:width], old)


def test_a_journal_whose_tables_had_other_columns_is_refused(mixed_folder, random_model_dir, tmp_path, monkeypatch):
    # A run interrupted under a focusnet whose image table lacked a column cannot be finished by this one.
    import focusnet.contract
    from focusnet.batch import plan_batch, run_batch

    out, model = tmp_path / "focus.csv", load_model(random_model_dir)
    monkeypatch.setattr(focusnet.contract, "IMAGE_COLUMNS", contract.IMAGE_COLUMNS[:-1])
    with pytest.raises(KeyboardInterrupt):
        def stop(entry):
            raise KeyboardInterrupt
        run_batch(plan_batch([mixed_folder], out), model, on_result=stop)
    monkeypatch.undo()
    with pytest.raises(InvalidParameterError, match=r"differs .* in \['columns'\]"):
        run_batch(plan_batch([mixed_folder], out), model, resume=True)
    assert not out.exists()

