"""Real headless CellProfiler runs of the pipelines in pipelines/ with the MeasureImageFocus plugin."""

import math
import os
import re
import subprocess

import numpy as np
import pytest

from conftest import CELLPROFILER_5, REPO, cellprofiler_command, read_csv, run_cellprofiler, run_pipeline
from focusnet.images import read_image, write_tiff
from helpers import check_measure_focus_rows


@pytest.fixture(scope="module")
def measure_focus_run(image_folder, tmp_path_factory):
    """One headless run of measure_focus.cppipe on ``image_folder``: its rows, the CompletedProcess, its folder."""
    out = tmp_path_factory.mktemp("measure_focus") / "out"
    rows, result = run_pipeline("measure_focus.cppipe", image_folder, out)
    return rows, result, out


def test_measure_focus_pipeline(measure_focus_run, image_folder, focusnet_predict):
    rows, result, out = measure_focus_run
    check_measure_focus_rows(rows, result, image_folder, focusnet_predict, out)


def test_qc_pipeline_flags_out_of_focus_images_and_empty_fields_apart(image_folder, in_focus_image, tmp_path):
    import shutil

    from focusnet.photons import binomial_thinning, photon_transfer

    folder = tmp_path / "images"
    shutil.copytree(image_folder, folder)
    gain, offset = photon_transfer(in_focus_image)  # the sharp example at 1 % of its light: content, too noisy
    dim = binomial_thinning(in_focus_image, 0.01, offset, gain, np.random.default_rng(1))
    write_tiff(folder / "dim_field.tif", dim)
    rows, _ = run_pipeline("focus_qc.cppipe", folder, tmp_path / "out")
    assert len(rows) == 8
    for row in rows:
        level = float(row["ImageFocus_DefocusLevel_DNA"])
        assert "ImageQuality_FocusScore_DNA" in row and "ImageQuality_PowerLogLogSlope_DNA" in row
        if not math.isnan(level):
            assert int(row["Metadata_OutOfFocus"]) == (1 if level > 2 else 0), row["FileName_DNA"]
    flagged = {row["FileName_DNA"] for row in rows if row["Metadata_OutOfFocus"] == "1"}
    # An image whose focus is unknown (no patch judged) never passes as in focus.
    assert flagged == {row["FileName_DNA"] for row in rows
                       if row["FileName_DNA"].startswith("MCF7")} | {"dark_field.tif", "dim_field.tif"}
    # The dark field no longer passes as "in focus": it is flagged, as without content.
    empty = {row["FileName_DNA"] for row in rows if row["Metadata_NoContent"] == "1"}
    assert empty == {"dark_field.tif"}
    # Neither is the dim one: it has content, none of it judged, and no level.
    not_judged = {row["FileName_DNA"] for row in rows if row["Metadata_NotJudged"] == "1"}
    assert not_judged == {"dark_field.tif", "dim_field.tif"}


def test_headless_run_with_a_missing_bundle_stops_before_the_first_image(image_folder, tmp_path):
    text = (REPO / "pipelines" / "measure_focus.cppipe").read_text()
    text = text.replace("Focus model:Shipped with focusnet", "Focus model:Custom bundle")
    lines = [f"    Folder holding the model bundle:Elsewhere...|{tmp_path / 'nowhere'}"
             if line.strip().startswith("Folder holding the model bundle:") else line for line in text.splitlines()]
    assert "Focus model:Custom bundle" in text
    pipeline = tmp_path / "bad.cppipe"
    pipeline.write_text("\n".join(lines) + "\n")
    result = run_cellprofiler(pipeline, image_folder, tmp_path / "out")
    output = result.stdout + result.stderr
    assert "model bundle not found" in output and "Model bundle file" in output
    assert not (tmp_path / "out" / "Image.csv").exists()
    assert result.returncode != 0


@pytest.fixture(scope="module")
def unreadable_files(tmp_path_factory, in_focus_paths):
    """Two real images beside four files CellProfiler's own reader cannot load."""
    import imageio.v2 as imageio

    folder = tmp_path_factory.mktemp("unreadable")
    for path in in_focus_paths[:2]:
        write_tiff(folder / (path.stem + ".tif"), read_image(path))
    (folder / "empty.tif").write_bytes(b"")
    (folder / "text.tif").write_text("not an image\n")
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 2), dtype=np.uint8)
    imageio.imwrite(folder / "grey_alpha.png", noise)  # grey + alpha
    imageio.imwrite(folder / "png.png", noise[..., 0])
    (folder / "png.png").rename(folder / "png_named.tif")
    return folder


def test_unreadable_files_end_a_plain_headless_run_and_always_continue_keeps_every_row(unreadable_files, tmp_path):
    # What docs/cellprofiler.md says: CellProfiler's reader, not the module, meets these files; a plain headless run
    # ends at the first with no Image.csv, and its own --always-continue skips each one and writes every row.
    plain = run_cellprofiler(REPO / "pipelines" / "measure_focus.cppipe", unreadable_files, tmp_path / "plain")
    assert not (tmp_path / "plain" / "Image.csv").exists(), plain.stdout[-2000:]
    rows, _ = run_pipeline("measure_focus.cppipe", unreadable_files, tmp_path / "continued",
                                options=["--always-continue"])
    levels = {row["FileName_DNA"]: row["ImageFocus_DefocusLevel_DNA"] for row in rows}
    assert set(levels) == {path.name for path in unreadable_files.iterdir()}
    for name, level in levels.items():
        readable = name.startswith("BBBC006")
        assert (level not in ("", "nan")) == readable, (name, level)


def test_an_overlay_folder_that_cannot_be_written_stops_the_run_before_the_first_image(image_folder, tmp_path):
    (tmp_path / "a file").write_text("x")
    text = (REPO / "pipelines" / "measure_focus.cppipe").read_text()
    assert "    Folder for the overlay files:Default Output Folder|\n" in text
    text = text.replace("    Folder for the overlay files:Default Output Folder|\n",
                        f"    Folder for the overlay files:Elsewhere...|{tmp_path / 'a file' / 'overlays'}\n")
    pipeline = tmp_path / "overlays.cppipe"
    pipeline.write_text(text)
    result = run_cellprofiler(pipeline, image_folder, tmp_path / "out")
    output = result.stdout + result.stderr
    assert "is a file, not a folder" in output and "Folder for the overlay files" in output
    assert not (tmp_path / "out" / "Image.csv").exists()


def test_split_runs_give_the_same_results(measure_focus_run, image_folder, tmp_path):
    """Cluster-style: image-set ranges (-f/-l) in separate processes reproduce one whole run."""
    whole, _, _ = measure_focus_run
    parts = []
    for first, last in ((1, 3), (4, 7)):
        out = tmp_path / f"part{first}"
        run_cellprofiler(REPO / "pipelines" / "measure_focus.cppipe", image_folder, out, "-f", first, "-l", last)
        parts += read_csv(out / "Image.csv")
    assert len(parts) == len(whole) == 7
    column = "ImageFocus_AggregateCertainty_DNA"
    split = {row["FileName_DNA"]: row[column] for row in parts}
    assert split == {row["FileName_DNA"]: row[column] for row in whole}


def test_the_qc_pipelines_table_feeds_focusnet_plate(tmp_path, in_focus_paths, out_of_focus_paths):
    # The round trip of docs/cellprofiler.md: a plate named as MetaXpress names it, the QC pipeline
    # headless, then `focusnet plate` on its Image.csv (wells and sites from the FileName_DNA column).
    from focusnet.cli import main

    plate = tmp_path / "plate"
    plate.mkdir()
    write_tiff(plate / "screen_B02_s1_w1.tif", read_image(in_focus_paths[0]))
    write_tiff(plate / "screen_B02_s2_w1.tif", read_image(out_of_focus_paths[0]))
    write_tiff(plate / "screen_C03_s1_w1.tif", read_image(in_focus_paths[1]))
    rows, _ = run_pipeline("focus_qc.cppipe", plate, tmp_path / "out")
    assert len(rows) == 3
    assert main(["plate", str(tmp_path / "out" / "Image.csv"), "--out", str(tmp_path / "map")]) == 0
    wells = {row["well"]: row for row in read_csv(tmp_path / "map" / "wells.csv")}
    assert set(wells) == {"B02", "C03"} and wells["B02"]["sites"] == "2"
    assert float(wells["B02"]["worst_level"]) >= 3 and float(wells["C03"]["worst_level"]) <= 1
    assert "wells with any site at level >= 3: 1" in (tmp_path / "map" / "summary.txt").read_text()
    assert (tmp_path / "map" / "most_defocused.png").is_file()


# --- a long night's bad images: each is one NaN row and a warning naming it, never the end of the run ---------------


def _bad_images(sharp):
    counts = sharp.astype(np.float32)
    nan = counts / 65535
    nan[10:20, 10:20] = np.nan
    inf = counts / 65535
    inf[5, 5] = np.inf
    negative = (sharp.astype(np.int32) - 400).astype(np.int16)
    return {
        # Floats are not measured unless the module is told what 1.0 stands for (the plugin tests
        # check NaN and Inf with that setting).
        "float NaN": (nan, "floating-point intensities"),
        "float Inf": (inf, "floating-point intensities"),
        "int16 negative": (negative, "float pixels must lie in [0, 1]"),
        "float raw counts": (counts, "floating-point intensities"),
        "float32 in [0, 1]": (counts / 65535, "floating-point intensities"),
        "float16 in [0, 1]": ((counts / 65535).astype(np.float16), "floating-point intensities"),
        "int32": (sharp.astype(np.int32), None),
        "uint32": (sharp.astype(np.uint32), None),
    }


#: What differs on CellProfiler 5, whose readers map integer types onto their full range and
#: rescale floats: None, measured as the counts held; else the warning of a NaN row.
CELLPROFILER_5_OUTCOMES = {
    "float NaN": "outside the raw counts",
    "float Inf": "constant image",
    "int16 negative": None,
    "float raw counts": None,
    "int32": "outside the raw counts",  # shifted by 2**31
}


#: Each bad case's file: between a_good.tif and c_good.tif, in the order of _bad_images.
BAD_FILES = {case: f"b{index}_{re.sub(r'[^A-Za-z0-9]+', '_', case).strip('_')}.tif"
             for index, case in enumerate(_bad_images(np.zeros((30, 30), np.uint16)))}


@pytest.fixture(scope="module")
def bad_images_run(tmp_path_factory, in_focus_paths):
    """One headless run over a good image, every bad case, and another good image: rows by file, and the log."""
    sharp = read_image(in_focus_paths[0])
    folder = tmp_path_factory.mktemp("bad_images") / "images"
    folder.mkdir()
    write_tiff(folder / "a_good.tif", sharp)
    for case, (pixels, _) in _bad_images(sharp).items():
        write_tiff(folder / BAD_FILES[case], pixels)
    write_tiff(folder / "c_good.tif", read_image(in_focus_paths[1]))
    rows, result = run_pipeline("measure_focus.cppipe", folder, folder.parent / "out")
    return {row["FileName_DNA"]: row for row in rows}, result


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_image_between_good_ones_is_a_nan_row_not_the_end_of_the_run(case, bad_images_run, in_focus_paths):
    # One run holds every case (one CellProfiler start instead of one per case); each case is checked
    # on its own row and its own warning, and the run must reach the good image after all of them.
    by_file, result = bad_images_run
    warning = _bad_images(np.zeros((30, 30), np.uint16))[case][1]
    name = BAD_FILES[case]
    assert set(by_file) == {"a_good.tif", "c_good.tif", *BAD_FILES.values()}, result.stderr[-3000:]
    for good in ("a_good.tif", "c_good.tif"):
        assert float(by_file[good]["ImageFocus_DefocusLevel_DNA"]) <= 1
    level = float(by_file[name]["ImageFocus_DefocusLevel_DNA"])
    log = result.stdout + result.stderr
    if CELLPROFILER_5:
        # CellProfiler 5's imageio readers hand some files over differently (docs/cellprofiler.md).
        warning = CELLPROFILER_5_OUTCOMES.get(case, warning)
    if warning is None:  # measured as the counts they hold: the sharp image's level and certainty
        assert level == float(by_file["a_good.tif"]["ImageFocus_DefocusLevel_DNA"])
        assert float(by_file[name]["ImageFocus_AggregateCertainty_DNA"]) == pytest.approx(
            float(by_file["a_good.tif"]["ImageFocus_AggregateCertainty_DNA"]), abs=1e-5)
    else:
        assert math.isnan(level)
        assert re.search(r"MeasureImageFocus: " + re.escape(name) + ".*" + re.escape(warning), log), log[-3000:]


@pytest.fixture(scope="module")
def many_images(tmp_path_factory, in_focus_paths):
    """400 real images: a run long enough to be signalled part way (written once for both signals)."""
    folder = tmp_path_factory.mktemp("many")
    sharp = read_image(in_focus_paths[0])
    for index in range(400):
        write_tiff(folder / f"img_{index:03d}.tif", sharp)
    return folder


@pytest.mark.parametrize("signal_number", ["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_headless_run_promptly(signal_number, tmp_path, many_images):
    import signal
    import time

    folder = many_images
    process = subprocess.Popen(
        cellprofiler_command(REPO / "pipelines" / "measure_focus.cppipe", folder, tmp_path / "out"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx1g"})
    measured = 0
    for line in process.stdout:  # wait until images are being measured
        measured += "module MeasureImageFocus" in line
        if measured >= 3:
            break
    sent = time.monotonic()
    process.send_signal(getattr(signal, signal_number))
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"CellProfiler did not end within 30 s of {signal_number}")
    assert process.returncode != 0 and time.monotonic() - sent < 30


@pytest.fixture
def one_big_image_at_a_time():
    """A lock held for the test: suites run side by side (make test) never measure two 20000-pixel images at once."""
    import fcntl
    import tempfile

    with open(os.path.join(tempfile.gettempdir(), "focusnet-tests-20000-pixel-image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.mark.skipif(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") < 14 * 2**30,
                    reason="CellProfiler itself needs about 7.5 GB for a 20000 x 20000 image (its float64 copy "
                           "and a 4 GB Java heap to read it); this machine has less than 14 GB")
def test_a_20000_pixel_image_is_measured_with_bounded_memory(tmp_path, in_focus_paths, one_big_image_at_a_time):
    import resource

    folder = tmp_path / "big"
    folder.mkdir()
    sharp = read_image(in_focus_paths[0])
    big = np.tile(sharp, (20000 // sharp.shape[0] + 1, 20000 // sharp.shape[1] + 1))[:20000, :20000]
    write_tiff(folder / "big.tif", big)
    del big
    result = run_cellprofiler(REPO / "pipelines" / "measure_focus.cppipe", folder, tmp_path / "out", heap="4g")
    (row,) = read_csv(tmp_path / "out" / "Image.csv")
    assert float(row["ImageFocus_DefocusLevel_DNA"]) <= 1, result.stderr[-3000:]
    assert int(row["ImageFocus_PatchCount_DNA"]) == (20000 // 84) ** 2
    # Before: 12 GB and a crash. Now CellProfiler's own share (its float64 image, 3.2 GB, and the
    # Java heap) dominates; the module adds float32 counts (1.6 GB) and a small overlay.
    # CellProfiler 5's own share is larger: 10.3 GB peak measured with its imageio reader.
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < (11 if CELLPROFILER_5 else 10) * 2**20  # kB


def test_an_old_pipeline_flagging_on_the_old_measurement_still_runs(tmp_path, in_focus_paths, out_of_focus_paths):
    # The QC pipeline as a user of the old CellProfiler-plugins module had it: that module's settings
    # (revision 1) and FlagImage on ImageFocus_Score_DNA.
    text = (REPO / "pipelines" / "focus_qc.cppipe").read_text()
    old_module = ("MeasureImageFocus:[module_num:5|svn_version:'Unknown'|variable_revision_number:1|show_window:False|"
                  "notes:[]|batch_state:array([], dtype=uint8)|enabled:True|wants_pause:False]\n"
                  "    Select an image to measure:DNA\n")
    text = re.sub(r"MeasureImageFocus:\[.*?\n\n", old_module + "\n", text, count=1, flags=re.S)
    text = text.replace("ImageFocus_DefocusLevel_DNA", "ImageFocus_Score_DNA")
    assert "variable_revision_number:1|" in text and "ImageFocus_Score_DNA" in text
    pipeline = tmp_path / "old_qc.cppipe"
    pipeline.write_text(text)
    folder = tmp_path / "images"
    folder.mkdir()
    write_tiff(folder / "a_sharp.tif", read_image(in_focus_paths[0]))
    write_tiff(folder / "b_blurred.tif", read_image(out_of_focus_paths[0]))
    result = run_cellprofiler(pipeline, folder, tmp_path / "out")
    rows = {row["FileName_DNA"]: row for row in read_csv(tmp_path / "out" / "Image.csv")}
    assert set(rows) == {"a_sharp.tif", "b_blurred.tif"}, result.stderr[-3000:]
    assert "does not exist" not in result.stderr
    assert rows["a_sharp.tif"]["Metadata_OutOfFocus"] == "0" and rows["b_blurred.tif"]["Metadata_OutOfFocus"] == "1"
    assert float(rows["b_blurred.tif"]["ImageFocus_Score_DNA"]) == float(
        rows["b_blurred.tif"]["ImageFocus_DefocusLevel_DNA"]) == 10


def test_the_refocus_pipeline_refocuses_then_finds_the_nuclei_of_the_in_focus_field(tmp_path, in_focus_image):
    from focusnet.optics import Optics
    from focusnet.simulate import degrade

    images = tmp_path / "images"
    images.mkdir()
    write_tiff(images / "a_in_focus.tif", in_focus_image)
    write_tiff(images / "b_level3.tif", degrade(in_focus_image, 3, seed=3, optics=Optics(defocus_phase="paraxial")))
    rows, result = run_pipeline("refocus_nuclei.cppipe", images, tmp_path / "out")
    by_name = {row["FileName_DNA"]: row for row in rows}
    assert by_name["a_in_focus.tif"]["Refocus_Refocused_DNA"] == "0.0"
    blurred = by_name["b_level3.tif"]
    assert blurred["Refocus_Refocused_DNA"] == "1.0"
    assert float(blurred["Refocus_DefocusLevelAfter_DNA"]) < float(blurred["Refocus_DefocusLevelBefore_DNA"])
    sharp_count, refocused_count = (float(by_name[name]["Count_Nuclei"]) for name in ("a_in_focus.tif", "b_level3.tif"))
    assert sharp_count > 20 and abs(refocused_count - sharp_count) <= 0.15 * sharp_count
    saved = read_image(tmp_path / "out" / "b_level3_refocused.tiff")
    assert saved.shape == in_focus_image.shape
