"""One record per result: every table, the CellProfiler measurements and failures come from focusnet.records."""

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from focusnet import contract
from focusnet.errors import ImageFormatError, NoContentError, TooNoisyError, UnmeasurableImageError
from focusnet.inference import predict_image
from focusnet.records import cell, image_features, image_record, patch_records, write_csv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prediction(model, in_focus_image):
    return predict_image(in_focus_image[:200, :300], model, name="crop")


def test_an_image_record_has_every_column_taken_by_name_from_the_prediction(prediction):
    record = image_record("crop.tif", prediction, pixel_size_um=0.65, pixel_size_source="assumed")
    assert list(record) == contract.IMAGE_COLUMNS
    assert record["defocus_level"] == prediction.defocus_level and isinstance(record["defocus_level"], int)
    assert record["patches"] == prediction.num_patches
    assert record["aggregate_certainty"] == pytest.approx(prediction.aggregate_certainty)
    assert [record[c] for c in contract.PROBABILITY_COLUMNS] == pytest.approx(list(prediction.distribution))
    assert record["defocus_um_lower_bound"] is bool(prediction.defocus_um_lower_bound)
    assert (record["pixel_size_um"], record["pixel_size_source"]) == (0.65, "assumed")


@pytest.mark.parametrize("error,patches,content,judged,reason", [
    (NoContentError("dark", num_patches=6), 6, 0.0, 0.0, "no content"),
    (TooNoisyError("dim", num_patches=6, content_fraction=0.5), 6, 0.5, 0.0, "too noisy"),
    (UnmeasurableImageError("small"), 0, math.nan, math.nan, "unmeasurable"),
    (ImageFormatError("colour"), 0, math.nan, math.nan, "image format"),
    (OSError("unreadable"), 0, math.nan, math.nan, "error"),
])
def test_a_failure_record_keeps_what_the_error_carries_and_is_nan_elsewhere(error, patches, content, judged, reason):
    record = image_record("bad.tif", error=error, pixel_size_um=None, pixel_size_source="")
    assert record["patches"] == patches
    assert record["content_fraction"] == pytest.approx(content, nan_ok=True)
    assert record["judged_fraction"] == pytest.approx(judged, nan_ok=True)
    assert record["reason"] == reason
    measured = [c for c in contract.IMAGE_COLUMNS if c not in ("image", "patches", "content_fraction",
                                                                 "judged_fraction", "pixel_size_source", "reason")]
    assert all(math.isnan(record[c]) for c in measured)
    row = [cell(record[c]) for c in contract.IMAGE_COLUMNS]
    assert row[1] == "nan" and row[contract.IMAGE_COLUMNS.index("patches")] == str(patches)


def test_cells_write_integers_booleans_and_floats_as_the_tables_always_did():
    assert [cell(3), cell(np.int64(3)), cell(True), cell(np.bool_(False)), cell(0.1), cell(np.float32(0.5)),
            cell(float("nan")), cell(None), cell("file")] == ["3", "3", "1", "0", "0.1", "0.5", "nan", "nan", "file"]
    third = np.float32(1) / np.float32(3)
    assert np.float32(cell(third)) == third  # nine digits bring a float32 back


def test_patch_records_follow_the_contract_and_leave_patches_without_content_unjudged(prediction):
    records = list(patch_records("crop.tif", prediction))
    assert len(records) == prediction.num_patches
    assert all(list(record) == contract.PATCH_COLUMNS for record in records)
    for record, content in zip(records, prediction.has_content.ravel()):
        assert record["content"] is bool(content)
        assert math.isnan(record["defocus_level"]) is (not content)


def test_cellprofiler_features_are_the_image_record_under_the_contracts_names(prediction):
    record = image_record("crop.tif", prediction, pixel_size_um=0.65, pixel_size_source="assumed")
    features = image_features(record)
    assert list(features) == contract.FEATURES
    assert features[contract.FEATURE_PATCH_COUNT] == prediction.num_patches
    assert isinstance(features[contract.FEATURE_PATCH_COUNT], int)
    assert features[contract.FEATURE_DEFOCUS_LEVEL] == float(prediction.defocus_level)
    failed = image_features(image_record("bad.tif", error=NoContentError("dark", num_patches=4)))
    assert failed[contract.FEATURE_PATCH_COUNT] == 4 and math.isnan(failed[contract.FEATURE_DEFOCUS_LEVEL])


def test_a_new_column_is_one_edit_in_the_contract(prediction, tmp_path, monkeypatch):
    # patch_size is a FocusPrediction attribute: naming it in the contract is all a new column needs.
    monkeypatch.setattr(contract, "IMAGE_COLUMNS", contract.IMAGE_COLUMNS + ["patch_size"])
    record = image_record("crop.tif", prediction, pixel_size_um=0.65, pixel_size_source="assumed")
    table = write_csv(tmp_path / "focus.csv", contract.IMAGE_COLUMNS, [record])
    (row,) = csv.DictReader(table.open())
    assert row["patch_size"] == str(contract.PATCH_SIZE)


def test_no_writer_maps_results_to_rows_by_position():
    # The mapping lives in focusnet.records alone: no other module indexes the column lists.
    offenders = []
    for path in sorted((REPO / "focusnet").rglob("*.py")) + [REPO / "plugins" / "measureimagefocus.py"]:
        text = path.read_text()
        if path.name != "records.py" and re.search(r"(IMAGE|PATCH|STACK|STACK_PLANE)_COLUMNS\.index|"
                                                   r"getattr\([^)]*(num_patches|content_fraction)", text):
            offenders.append(path.name)
    assert offenders == []


def test_a_well_record_is_the_wells_table_row(tmp_path):
    from focusnet.plate import WellSummary, write_wells_csv

    wells = [WellSummary("B03", 1, 2, 3, 2, 6.0, 3.0, 0.8125), WellSummary("A01", 0, 0, 1, 0, *[math.nan] * 3)]
    rows = list(csv.reader(write_wells_csv(wells, tmp_path / "wells.csv").open()))
    assert rows == [contract.WELL_COLUMNS, ["B03", "1", "2", "3", "2", "6", "3", "0.8125"],
                    ["A01", "0", "0", "1", "0", "nan", "nan", "nan"]]
