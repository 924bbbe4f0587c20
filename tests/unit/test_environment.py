"""The environments make builds: their pins (the wheel: tests/packaging/test_release.py; CellProfiler:
tests/integration/test_cellprofiler_environment.py)."""

import sys

import pytest

from conftest import REPO


def test_installed_versions_match_the_lock():
    from importlib.metadata import version

    name = "main" if sys.version_info[:2] == (3, 9) else "latest"
    pins = {}
    for line in (REPO / "requirements" / f"{name}.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            package, pinned = line.split("==")
            pins[package] = pinned
    assert len(pins) > 10
    mismatched = {p: (v, version(p)) for p, v in pins.items() if version(p) != v}
    assert not mismatched


@pytest.mark.cellprofiler  # the main environment only
def test_main_environment_pins():
    import numpy
    import tensorflow as tf

    assert sys.version_info[:2] == (3, 9)
    assert tf.__version__ == "2.15.1"
    assert tuple(int(x) for x in numpy.__version__.split(".")[:2]) < (1, 25)
    import pkg_resources  # noqa: F401  (cellprofiler needs it: setuptools < 70)
