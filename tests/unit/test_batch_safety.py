"""focusnet predict through a long night's faults: nothing lost, nothing torn, no input touched.

The faults caught in the process itself; signals, a full disk and a file that vanishes mid-run go to
real subprocesses in tests/integration/test_batch_interruptions.py.
"""

from pathlib import Path

import numpy as np
import pytest

from conftest import read_csv
from focusnet.cli import main
from focusnet.images import write_tiff
from focusnet.journal import journal_path


@pytest.fixture
def small_batch(tmp_path, crops):
    folder = tmp_path / "images"
    folder.mkdir()
    for index, crop in enumerate(crops[:4]):
        write_tiff(folder / f"img_{index}.tif", crop)
    return folder


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
    assert "the image and patch tables are the same file" in capsys.readouterr().err and not out.exists()


def test_overlays_in_the_input_folder_are_not_measured_the_next_time(small_batch, tmp_path, capsys):
    for run in range(2):
        assert main(["predict", str(small_batch), "--csv", str(tmp_path / f"run{run}.csv"), "--overlay-dir",
                     str(small_batch)]) == 0
    assert "4 image(s) are focusnet's own overlays (*_focus.png of an earlier run): left out" in capsys.readouterr().err
    first, second = read_csv(tmp_path / "run0.csv"), read_csv(tmp_path / "run1.csv")
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
    assert len(read_csv(tmp_path / "f.csv")) == 4


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


# --- resume ---------------------------------------------------------------------------------------------------------


def test_resume_needs_the_same_run(small_batch, tmp_path, capsys):
    out = tmp_path / "f.csv"
    assert main(["predict", str(small_batch), "--csv", str(out), "--resume"]) == 1
    assert "no unfinished run to resume" in capsys.readouterr().err
    from focusnet.journal import JOURNAL_VERSION

    journal_path(out).write_text('{"format": "focusnet-journal", "version": %d, "command": "predict"}\n'
                                 % JOURNAL_VERSION)
    assert main(["predict", str(small_batch), "--csv", str(out)]) == 1
    assert "holds an unfinished run's results: resume that run" in capsys.readouterr().err
    assert main(["predict", str(small_batch), "--csv", str(out), "--resume"]) == 1
    assert "cannot resume: this run differs" in capsys.readouterr().err
    # A journal of an older layout (rows, not records) is refused, not misread.
    journal_path(out).write_text('{"format": "focusnet-journal", "version": 1, "command": "predict"}\n')
    assert main(["predict", str(small_batch), "--csv", str(out), "--resume"]) == 1
    err = capsys.readouterr().err
    assert "was written by another focusnet (journal version 1" in err and "delete it" in err
    # A refused journal is not "kept results": the advice is never to resume it.
    assert "run the same command" not in err


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
