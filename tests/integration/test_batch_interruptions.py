"""focusnet predict through a long night's faults, in real subprocesses: signals, a full disk, a file that vanishes.

A full disk is a real failing write (the process's file-size limit, so that a write fails part way as
on a full disk). The faults caught before anything runs are in tests/unit/test_batch_safety.py.
"""

import csv
import os
import random
import resource
import signal
import subprocess
import sys
import time

import pytest

from focusnet.images import write_tiff
from focusnet.journal import journal_path


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory, crops):
    """200 images: long enough to be interrupted part way."""
    folder = tmp_path_factory.mktemp("batch")
    for index in range(200):
        write_tiff(folder / f"img_{index:03d}.tif", crops[index % len(crops)])
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
    # Only the vanished file is "not found"; the others keep their answers (a level, or "too noisy" for the one
    # dim crop of a blurred MCF-7 field, as in an uninterrupted run).
    assert len(rows) == 40 and all(row["reason"] in ("", "too noisy") for row in rows[:39])
    assert sum(row["reason"] == "" for row in rows[:39]) >= 35
    assert rows[39]["defocus_level"] == "nan" and rows[39]["reason"] == "not found"
    assert "img_039.tif" in err and "NaN" in err


def test_a_full_disk_while_writing_a_plot_names_the_path_given_not_a_hidden_file(tmp_path, crops):
    import numpy as np
    import tifffile

    stack = tmp_path / "s.tif"
    tifffile.imwrite(stack, np.stack([crops[0]] * 3), imagej=True, metadata={"axes": "ZYX"})
    table = tmp_path / "results.csv"
    table.write_text("image,defocus_level,aggregate_certainty\nx_A01_s1.tif,0,0.9\nx_B02_s1.tif,5,0.8\n")
    for command, output in ((["plate", str(table), "--out", str(tmp_path / "map"), "--montage", "0"],
                             tmp_path / "map" / "plate_map.png"),
                            (["stack", str(stack), "--csv", str(tmp_path / "planes.csv"), "--plots",
                              str(tmp_path / "plots")], tmp_path / "plots" / "s_focus_curve.png")):
        full = subprocess.run([sys.executable, "-m", "focusnet", *command], capture_output=True, text=True,
                              timeout=600, preexec_fn=_limit_file_size(5_000))
        assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
        assert str(output) in full.stderr and ".partial" not in full.stderr, full.stderr
        assert not output.exists() and not list(output.parent.glob(".*partial*"))
