"""The napari tier: a real napari viewer (napari's ``make_napari_viewer`` fixture) under Xvfb.

Runs in ``.venv-napari`` (``make test-napari``, started under ``xvfb-run``). Elsewhere the test
modules skip (napari or pytest-qt not installed), and without a display every test skips with
the reason.
"""

import os
import shutil

import pytest


@pytest.fixture(autouse=True)
def _needs_a_display():
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        pytest.skip("no X display: run the napari tier under Xvfb (make test-napari uses xvfb-run; "
                    + ("it is installed)" if shutil.which("xvfb-run") else "install it: apt-get install xvfb)"))
