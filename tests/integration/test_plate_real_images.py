"""focusnet plate after focusnet predict on a plate of real images named in each convention.

Parsing names and tables is tested in tests/unit/test_plate.py.
"""

import csv

import numpy as np
import pytest

from focusnet.cli import main
from focusnet.images import read_image, write_tiff


@pytest.fixture(scope="module")
def plate_folder(tmp_path_factory, in_focus_paths, out_of_focus_paths):
    """Real images named in each convention; the expected worst level class per well."""
    folder = tmp_path_factory.mktemp("plate")
    sharp = [read_image(path) for path in in_focus_paths]
    blurred = [read_image(path) for path in out_of_focus_paths]
    dark = (np.random.default_rng(3).poisson(20, (300, 400)) + 100).astype(np.uint16)
    images = {
        "plate1_B03_s1_w1.tif": sharp[0], "plate1_B03_s2_w1.tif": blurred[0],  # MetaXpress, two sites
        "r03c05f01p01-ch1sk1fk1fl1.tiff": sharp[1],                              # Harmony
        "exp__d07__s1__w1_10.tif": blurred[1],                                   # BBBC style
        "A01.tif": sharp[2],                                                     # a bare well
        "plate1_h12.tif": dark,                                                  # no content: not measured
    }
    for name, image in images.items():
        write_tiff(folder / name, image)
    return folder


def test_a_plate_of_real_images_from_focusnet_predict(plate_folder, tmp_path, capsys):
    results = tmp_path / "focus.csv"
    assert main(["predict", str(plate_folder), "--csv", str(results)]) == 0
    out = tmp_path / "plate"
    assert main(["plate", str(results), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with open(out / "wells.csv", newline="") as handle:
        wells = {row["well"]: row for row in csv.DictReader(handle)}
    assert set(wells) == {"A01", "B03", "C05", "D07", "H12"}
    assert float(wells["A01"]["worst_level"]) <= 1 and float(wells["C05"]["worst_level"]) <= 1
    assert float(wells["B03"]["worst_level"]) >= 3 and wells["B03"]["sites"] == "2"
    assert float(wells["B03"]["mean_level"]) < float(wells["B03"]["worst_level"])
    assert float(wells["D07"]["worst_level"]) >= 3
    assert wells["H12"]["measured_sites"] == "0" and wells["H12"]["worst_level"] == "nan"
    summary = (out / "summary.txt").read_text()
    assert "6 images in 5 wells of a 96-well plate" in summary and summary in printed
    assert "wells with any site at level >= 3: 2" in summary and "B03:" in summary and "D07:" in summary
    assert "not measured (no content, too small, unreadable): 1" in summary
    for name in ("plate_map.png", "most_defocused.png"):
        assert (out / name).stat().st_size > 20_000
