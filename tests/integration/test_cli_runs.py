"""The focusnet command line run as a user runs it: a new Python process per command.

The in-process checks are in tests/unit/test_cli.py.
"""

import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import tifffile

from focusnet.contract import NUM_LEVELS


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "focusnet", *map(str, arguments)], capture_output=True, text=True, timeout=300
    )


def test_simulate_writes_a_series_and_a_montage(tmp_path, in_focus_paths):
    result = run_cli("simulate", in_focus_paths[0], "--out", tmp_path, "--seed", 4)
    assert result.returncode == 0, result.stderr
    stem = in_focus_paths[0].stem
    written = sorted(p.name for p in tmp_path.glob("*.tif"))
    assert written == [f"{stem}_level{level:02d}.tif" for level in range(NUM_LEVELS)]
    montage = tmp_path / f"{stem}_montage.png"
    assert str(montage) in result.stdout
    picture = imageio.imread(montage)
    assert picture.ndim == 3 and picture.shape[0] > 300 and picture.std() > 5
    level7 = tifffile.imread(tmp_path / f"{stem}_level07.tif")
    assert level7.dtype == np.uint16 and level7.shape == (520, 696)


def test_help_is_useful():
    top = run_cli("--help")
    assert top.returncode == 0 and "simulate" in top.stdout and "Yang et al." in top.stdout
    sub = run_cli("simulate", "--help")
    for option in ("--out", "--levels", "--seed", "--no-noise", "--na", "--pixel-size", "--z-step", "--gain"):
        assert option in sub.stdout


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["simulate", "/nonexistent.tif", "--out", "OUT"], "no such image file"),
        (["simulate", "IMG", "--out", "OUT", "--levels", "3-1"], "invalid level list"),
        (["simulate", "IMG", "--out", "OUT", "--na", "-1"], "must be a finite number > 0"),
        (["simulate", "IMG", "--out", "OUT", "--na", "1.2"], "numerical aperture"),
    ],
)
def test_errors_are_clear_and_short(tmp_path, arguments, message, in_focus_paths):
    arguments = [str(in_focus_paths[0]) if a == "IMG" else str(tmp_path / "out") if a == "OUT" else a
                 for a in arguments]
    result = run_cli(*arguments)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_rgb_input_error_names_the_file(tmp_path):
    path = tmp_path / "colour.png"
    imageio.imwrite(path, np.zeros((100, 100, 3), np.uint8))
    result = run_cli("simulate", path, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert "colour.png" in result.stderr and "(100, 100, 3)" in result.stderr
