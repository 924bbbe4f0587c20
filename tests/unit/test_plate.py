"""focusnet plate: wells and sites from names or metadata, plate maps, the most defocused images, a summary."""

import csv
import math

import pytest

from focusnet.cli import main
from focusnet.errors import InvalidParameterError
from focusnet.plate import (
    PLATE_FORMATS,
    SiteResult,
    plate_format,
    read_results,
    summarise_wells,
    well_and_site,
    well_position,
)


@pytest.mark.parametrize("name,expected", [
    ("plate1_B03_s2_w1.tif", (2, 3, "2")),                              # MetaXpress
    ("plate1_B03_s2_w1F9A3C.tif", (2, 3, "2")),
    ("r03c11f05p01-ch1sk1fk1fl1.tiff", (3, 11, "5")),                   # Opera / Operetta (Harmony)
    ("BBBC006_z_aligned__a01__s1__w1_10.png", (1, 1, "1")),            # BBBC
    ("00_mcf-z-stacks-03212011_c06_s2_w1e3.tif", (3, 6, "2")),
    ("A01.tif", (1, 1, "1")),
    ("folder/plate2_h12.tif", (8, 12, "1")),
    ("exp_t01_z05_C07_f03.tif", (3, 7, "3")),                           # t01, z05 are not wells
    ("AF48_s3.tif", (32, 48, "3")),                                     # 1536-well rows go to AF
    ("data01.tif", None),
    ("image.tif", None),
])
def test_wells_and_sites_from_the_usual_file_names(name, expected):
    assert well_and_site(name) == expected


def test_a_pattern_for_the_rest():
    import re

    pattern = re.compile(r"well-(?P<well>[A-P]\d+)-field(?P<site>\d+)")
    assert well_and_site("exp3_well-C7-field04.tif", pattern) == (3, 7, "4")
    pattern = re.compile(r"R(?P<row>\d+)C(?P<col>\d+)")
    assert well_and_site("scan_R4C10.tif", pattern) == (4, 10, "1")


def test_well_names_and_plate_formats():
    assert well_position("B07") == (2, 7) and well_position("af48") == (32, 48)
    with pytest.raises(InvalidParameterError, match="not a well name"):
        well_position("Q99")

    def site(row, col):
        return SiteResult("x", "", row, col, "1", 0.0, 1.0)

    assert plate_format([site(8, 12), site(1, 1)]) == 96
    assert plate_format([site(9, 1)]) == 384 and plate_format([site(1, 13)]) == 384
    assert plate_format([site(17, 1)]) == 1536
    assert set(PLATE_FORMATS) == {96, 384, 1536}


def test_wells_summarise_their_sites():
    sites = [SiteResult("a", "B03", 2, 3, "1", 0.0, 0.8), SiteResult("b", "B03", 2, 3, "2", 6.0, 0.6),
             SiteResult("c", "B03", 2, 3, "3", math.nan, math.nan), SiteResult("d", "A01", 1, 1, "1", math.nan, 0.0)]
    a01, b03 = summarise_wells(sites)
    assert (b03.well, b03.sites, b03.measured, b03.worst_level, b03.mean_level) == ("B03", 3, 2, 6.0, 3.0)
    assert b03.mean_certainty == pytest.approx(0.7)
    assert a01.measured == 0 and math.isnan(a01.worst_level)


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_cellprofiler_tables_with_well_metadata(tmp_path):
    path = tmp_path / "Image.csv"
    _write_csv(path, [
        {"ImageNumber": 1, "Metadata_Well": "C05", "Metadata_Site": "2", "FileName_DNA": "x.tif", "PathName_DNA": "/d",
         "ImageFocus_DefocusLevel_DNA": 4, "ImageFocus_AggregateCertainty_DNA": 0.7},
        {"ImageNumber": 2, "Metadata_Well": "C05", "Metadata_Site": "1", "FileName_DNA": "y.tif", "PathName_DNA": "/d",
         "ImageFocus_DefocusLevel_DNA": "nan", "ImageFocus_AggregateCertainty_DNA": "nan"},
    ])
    first, second = read_results(path)
    assert (first.well, first.site, first.defocus_level, first.path) == ("C05", "2", 4.0, "/d/x.tif")
    assert math.isnan(second.defocus_level)
    with pytest.raises(InvalidParameterError, match="no ImageFocus_DefocusLevel_GFP column"):
        read_results(path, image_name="GFP")


def test_tables_it_cannot_place_are_refused_clearly(tmp_path):
    unknown = tmp_path / "other.csv"
    _write_csv(unknown, [{"a": 1, "b": 2}])
    with pytest.raises(InvalidParameterError, match="neither a focusnet predict CSV"):
        read_results(unknown)
    unnamed = tmp_path / "focus.csv"
    _write_csv(unnamed, [{"image": "/d/image.tif", "defocus_level": 0, "aggregate_certainty": 0.9}])
    with pytest.raises(InvalidParameterError, match="no well found for 1 of 1 images.*a file-name pattern"):
        read_results(unnamed)
    with pytest.raises(InvalidParameterError, match="needs named groups"):
        read_results(unnamed, pattern=r"(\d+)")
    with pytest.raises(InvalidParameterError, match="not a regular expression"):
        read_results(unnamed, pattern="(")


def test_the_results_file_is_never_an_output(tmp_path, capsys):
    results = tmp_path / "summary.txt"
    _write_csv(results, [{"image": "A01.tif", "defocus_level": 0, "aggregate_certainty": 0.9}])
    before = results.read_bytes()
    assert main(["plate", str(results), "--out", str(tmp_path)]) == 1
    assert "is an input" in capsys.readouterr().err and results.read_bytes() == before
