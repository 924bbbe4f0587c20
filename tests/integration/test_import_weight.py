"""Importing focusnet stays light, checked in a fresh Python process each.

The package's shape is tested in tests/unit/test_structure.py.
"""

import subprocess
import sys


def test_importing_focusnet_stays_light():
    code = ("import sys, focusnet, focusnet.contract, focusnet.simulate, focusnet.cli, focusnet.inference, "
            "focusnet.batch, focusnet.loader, focusnet.model, focusnet.bundle, focusnet.train, focusnet.evaluate, "
            "focusnet.card; print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_package_offers_its_main_functions_lazily():
    code = ("import sys, focusnet; before = 'focusnet.batch' in sys.modules; "
            "from focusnet import predict_paths, predict_image, load_model, FocusnetError; "
            "print(before, predict_paths.__module__, predict_image.__module__, load_model.__module__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "focusnet.batch", "focusnet.inference", "focusnet.loader"]
