"""focusnet predict / evaluate / train from the command line."""


import imageio.v2 as imageio
import numpy as np
import pytest

from conftest import read_csv
from focusnet.cli import main
from focusnet.contract import IMAGE_COLUMNS, NUM_LEVELS, PATCH_COLUMNS
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model


def test_predict_writes_image_and_patch_tables(tmp_path, two_sharp_images, random_model_dir):
    out = tmp_path / "images.csv"
    patches = tmp_path / "patches.csv"
    overlays = tmp_path / "overlays"
    assert main(["predict", str(two_sharp_images), "--model", str(random_model_dir), "--csv", str(out),
                 "--patches-csv", str(patches), "--overlay-dir", str(overlays)]) == 0
    rows = read_csv(out)
    assert list(rows[0]) == IMAGE_COLUMNS
    assert len(rows) == 2
    patch_rows = read_csv(patches)
    assert list(patch_rows[0]) == PATCH_COLUMNS
    assert len(patch_rows) == 2 * 48
    model = load_model(random_model_dir)
    for row in rows:
        expected = predict_image(read_image(row["image"]), model)
        assert int(row["defocus_level"]) == expected.defocus_level
        assert float(row["aggregate_certainty"]) == pytest.approx(expected.aggregate_certainty, abs=1e-7)
        assert float(row["mean_certainty"]) == pytest.approx(expected.mean_certainty, abs=1e-7)
        np.testing.assert_allclose([float(row[f"prob_{k}"]) for k in range(NUM_LEVELS)], expected.distribution,
                                   atol=1e-8)
        assert int(row["patches"]) == 48
        assert float(row["content_fraction"]) == pytest.approx(expected.content_fraction)
        assert float(row["defocus_um"]) == pytest.approx(expected.defocus_um, rel=1e-6)
        assert row["pixel_size_source"] == "assumed" and float(row["pixel_size_um"]) == 0.65
        for patch in (p for p in patch_rows if p["image"] == row["image"]):
            r, c = int(patch["row"]), int(patch["col"])
            assert (int(patch["y"]), int(patch["x"])) == (expected.y[r], expected.x[c])
            assert int(patch["content"]) == expected.has_content[r, c]
            assert int(patch["judged"]) == expected.judged_patches[r, c]
            if expected.judged_patches[r, c]:
                np.testing.assert_allclose([float(patch[f"prob_{k}"]) for k in range(NUM_LEVELS)],
                                           expected.probabilities[r, c], atol=1e-8)
            else:  # not judged
                assert patch["defocus_level"] == patch["certainty"] == patch["prob_0"] == "nan"
    overlay_files = sorted(p.name for p in overlays.glob("*.png"))
    assert len(overlay_files) == 2 and imageio.imread(overlays / overlay_files[0]).shape[2] in (3, 4)


def test_an_output_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path, two_sharp_images, random_model_dir,
                                                                       capsys):
    out = tmp_path / "no such folder" / "focus.csv"
    assert main(["predict", str(two_sharp_images), "--model", str(random_model_dir), "--csv", str(out)]) == 1
    error = capsys.readouterr().err
    assert "focusnet predict: error:" in error and "no such folder" in error and "Traceback" not in error
