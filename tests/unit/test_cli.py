"""The focusnet command line, called in this process (tests/integration/test_cli_runs.py runs it as a user does)."""


import numpy as np
import tifffile

from focusnet.cli import main
from focusnet.simulate import Sensor, simulate_series


def test_simulate_matches_the_library(tmp_path, in_focus_image, in_focus_paths):
    assert main(["simulate", str(in_focus_paths[0]), "--out", str(tmp_path), "--levels", "0,3-4", "--seed", "9",
                 "--no-noise"]) == 0
    expected = simulate_series(in_focus_image, [0, 3, 4], seed=9, sensor=Sensor(noise=False))
    stem = in_focus_paths[0].stem
    for level, image in zip([0, 3, 4], expected):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"{stem}_level{level:02d}.tif"), image)
    assert not (tmp_path / f"{stem}_level01.tif").exists()


def test_simulate_optics_options_change_the_result(tmp_path, in_focus_paths):
    main(["simulate", str(in_focus_paths[0]), "--out", str(tmp_path / "a"), "--levels", "5", "--no-noise"])
    main(["simulate", str(in_focus_paths[0]), "--out", str(tmp_path / "b"), "--levels", "5", "--no-noise",
          "--na", "0.3"])
    name = f"{in_focus_paths[0].stem}_level05.tif"
    a, b = (tifffile.imread(tmp_path / d / name).astype(float) for d in "ab")
    # Smaller NA: less defocus blur, so more high-frequency content.
    assert np.abs(np.diff(b, axis=1)).mean() > np.abs(np.diff(a, axis=1)).mean()
