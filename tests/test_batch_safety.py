"""focusnet predict through a long night's faults: nothing lost, nothing torn, no input touched.

Signals go to real subprocesses; a full disk is a real failing write (the process's file-size
limit, so that a write fails part way as on a full disk).
"""

import csv
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from focusnet.cli import main
from focusnet.images import read_image, write_tiff
from focusnet.journal import journal_path


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def crops(in_focus_paths, out_of_focus_paths):
    """Real 260 x 348 crops, sharp and blurred (a batch of them measures quickly)."""
    images = [read_image(path) for path in list(in_focus_paths) + list(out_of_focus_paths)]
    return [image[y:y + 260, x:x + 348] for image in images for y, x in ((0, 0), (250, 340))]


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory, crops):
    """200 images: long enough to be interrupted part way."""
    folder = tmp_path_factory.mktemp("batch")
    for index in range(200):
        write_tiff(folder / f"img_{index:03d}.tif", crops[index % len(crops)])
    return folder


@pytest.fixture
def small_batch(tmp_path, crops):
    folder = tmp_path / "images"
    folder.mkdir()
    for index, crop in enumerate(crops[:4]):
        write_tiff(folder / f"img_{index}.tif", crop)
    return folder


def predict_command(*arguments):
    return [sys.executable, "-m", "focusnet", "predict", *map(str, arguments)]


@pytest.fixture(scope="module")
def uninterrupted(big_batch, tmp_path_factory):
    """The tables of an uninterrupted run, to compare resumed runs with byte for byte."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run(predict_command(big_batch, "--csv", out / "focus.csv", "--patches-csv", out / "patches.csv"),
                   check=True, capture_output=True, timeout=900)
    return (out / "focus.csv").read_bytes(), (out / "patches.csv").read_bytes()


def journal_entries(path):
    try:
        return max(path.read_bytes().count(b"\n") - 1, 0)
    except FileNotFoundError:
        return 0


def wait_for_entries(process, journal, count, timeout=600):
    start = time.monotonic()
    while journal_entries(journal) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - start < timeout
        time.sleep(0.02)


# --- outputs that would touch inputs -----------------------------------------------------------------------------


def test_an_output_naming_an_input_is_refused_before_anything_is_written(small_batch, capsys):
    image = small_batch / "img_0.tif"
    before = image.read_bytes()
    assert main(["predict", str(small_batch), "--csv", str(image)]) == 1
    assert main(["predict", str(small_batch), "--csv", str(small_batch.parent / "f.csv"), "--patches-csv",
                 str(image)]) == 1
    err = capsys.readouterr().err
    assert err.count("is an input image: refusing to write over it") == 2 and "Traceback" not in err
    assert image.read_bytes() == before
    assert not (small_batch.parent / "f.csv").exists() and not journal_path(image).exists()


def test_the_two_tables_cannot_be_one_file(small_batch, tmp_path, capsys):
    out = tmp_path / "same.csv"
    assert main(["predict", str(small_batch), "--csv", str(out), "--patches-csv", str(out)]) == 1
    assert "--csv and --patches-csv are the same file" in capsys.readouterr().err and not out.exists()


def test_overlays_in_the_input_folder_are_not_measured_the_next_time(small_batch, tmp_path, capsys):
    for run in range(2):
        assert main(["predict", str(small_batch), "--csv", str(tmp_path / f"run{run}.csv"), "--overlay-dir",
                     str(small_batch)]) == 0
    assert "4 image(s) are focusnet's own overlays (*_focus.png of an earlier run): left out" in capsys.readouterr().err
    first, second = read_rows(tmp_path / "run0.csv"), read_rows(tmp_path / "run1.csv")
    assert len(first) == len(second) == 4 and first == second
    assert len(list(small_batch.glob("*_focus.png"))) == 4


def test_an_overlay_that_would_replace_an_input_is_refused(tmp_path, crops, capsys):
    import imageio.v2 as imageio

    folder = tmp_path / "images"
    folder.mkdir()
    write_tiff(folder / "b.tif", crops[0])
    imageio.imwrite(folder / "b_focus.png", crops[1])  # a user's image that happens to end like an overlay
    before = (folder / "b_focus.png").read_bytes()
    assert main(["predict", str(folder), "--csv", str(tmp_path / "f.csv"), "--overlay-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "the overlay of" in err and "would replace the input" in err
    assert (folder / "b_focus.png").read_bytes() == before and not (tmp_path / "f.csv").exists()


def test_the_same_file_twice_is_measured_once(small_batch, tmp_path, capsys):
    image = small_batch / "img_1.tif"
    assert main(["predict", str(image), str(small_batch), f"{small_batch}/../images/img_1.tif", "--csv",
                 str(tmp_path / "f.csv")]) == 0
    assert "2 image(s) named more than once, measured once" in capsys.readouterr().err
    assert len(read_rows(tmp_path / "f.csv")) == 4


# --- file-system faults: one line naming the path and the fix ------------------------------------------------------


@pytest.mark.parametrize("case", ["missing folder", "folder is a file", "csv is a folder", "overlay dir is a file",
                                  "unwritable folder"])
def test_file_system_faults_are_one_clear_line(small_batch, tmp_path, capsys, case):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    arguments = {"missing folder": ["--csv", str(tmp_path / "missing" / "f.csv")],
                 "folder is a file": ["--csv", str(blocker / "f.csv")],
                 "csv is a folder": ["--csv", str(tmp_path)],
                 "overlay dir is a file": ["--csv", str(tmp_path / "f.csv"), "--overlay-dir", str(blocker)],
                 # /proc/1 refuses new files even to root (os.access cannot tell).
                 "unwritable folder": ["--csv", "/proc/1/focus.csv"]}[case]
    assert main(["predict", str(small_batch), *arguments]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("focusnet predict: error:") and "\n" not in err and "Traceback" not in err, err
    assert {"missing folder": "does not exist; create it first", "folder is a file": "is a file, not a folder",
            "csv is a folder": "is a folder; give a file name", "overlay dir is a file": "is a file, not a folder",
            "unwritable folder": "choose a folder you can write to"}[case] in err
    assert not (tmp_path / "f.csv").exists()


# --- interruption and resume ------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signal_number,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_keeps_every_measured_image_and_resume_finishes_the_same(big_batch, uninterrupted, tmp_path,
                                                                          signal_number, status):
    out = tmp_path / "focus.csv"
    command = predict_command(big_batch, "--csv", out, "--patches-csv", tmp_path / "patches.csv")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop_at = random.Random(signal_number).randint(3, 60)
    wait_for_entries(process, journal_path(out), stop_at)
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    message = err.strip().splitlines()[-1]
    assert "stopped by" in message and "--resume" in message and "Traceback" not in err, err
    kept = journal_entries(journal_path(out))
    assert stop_at <= kept < 200 and not out.exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert (out.read_bytes(), (tmp_path / "patches.csv").read_bytes()) == uninterrupted
    assert not journal_path(out).exists()


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_full_disk_keeps_what_was_measured_and_resume_finishes_the_same(big_batch, uninterrupted, tmp_path):
    out = tmp_path / "focus.csv"
    command = predict_command(big_batch, "--csv", out, "--patches-csv", tmp_path / "patches.csv")
    full = subprocess.run(command, capture_output=True, text=True, timeout=900, preexec_fn=_limit_file_size(150_000))
    assert full.returncode == 1, full.stderr
    assert "error:" in full.stderr and "--resume" in full.stderr and "Traceback" not in full.stderr
    kept = journal_entries(journal_path(out))
    assert 3 <= kept < 200 and not out.exists()
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert (out.read_bytes(), (tmp_path / "patches.csv").read_bytes()) == uninterrupted


def test_resume_needs_the_same_run(small_batch, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(["predict", str(small_batch), "--csv", str(out), "--resume"]) == 1
    assert "no unfinished run to continue" in capsys.readouterr().err
    journal_path(out).write_text('{"format": "focusnet-journal", "version": 1, "command": "predict"}\n')
    assert main(["predict", str(small_batch), "--csv", str(out)]) == 1
    assert "holds an unfinished run's results: continue it with --resume" in capsys.readouterr().err
    assert main(["predict", str(small_batch), "--csv", str(out), "--resume"]) == 1
    assert "cannot resume: this run differs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_file_that_vanishes_mid_batch_is_one_nan_row(big_batch, tmp_path):
    folder = tmp_path / "vanishing"
    folder.mkdir()
    for index in range(40):
        os.link(big_batch / f"img_{index:03d}.tif", folder / f"img_{index:03d}.tif")
    out = tmp_path / "focus.csv"
    process = subprocess.Popen(predict_command(folder, "--csv", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    wait_for_entries(process, journal_path(out), 2)
    (folder / "img_039.tif").unlink()
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    rows = read_rows(out)
    assert len(rows) == 40 and all(row["defocus_level"] != "nan" for row in rows[:39])
    assert rows[39]["defocus_level"] == "nan" and "img_039.tif" in err and "NaN" in err


def test_the_journal_drops_a_torn_last_line(tmp_path):
    from focusnet.journal import Journal

    path = tmp_path / "j.journal"
    with Journal.start(path, {"inputs": ["a", "b"]}) as journal:
        journal.record("a", row=["a", "1"])
    with open(path, "a") as handle:
        handle.write('{"key": "b", "row": ["b", "2"')  # killed mid-line
    resumed = Journal.resume(path, {"inputs": ["a", "b"]})
    assert list(resumed.entries) == ["a"]
    resumed.record("b", row=["b", "2"])
    resumed.close()
    assert [line.count("{") for line in path.read_text().splitlines()] == [1, 1, 1]
    assert np.all([Path(path).read_text().endswith("\n")])
