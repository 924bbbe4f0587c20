"""focusnet predict / evaluate / train as whole runs: new Python processes, training.

The in-process checks are in tests/unit/test_predict_cli.py.
"""

import json
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from conftest import read_csv
from focusnet.cli import main
from focusnet.contract import NUM_LEVELS
from focusnet.images import read_image, write_tiff


def test_a_bad_image_in_a_batch_gets_a_nan_row_and_a_warning(tmp_path, two_sharp_images, random_model_dir):
    write_tiff(two_sharp_images / "tiny.tif", np.arange(50 * 60, dtype=np.uint16).reshape(50, 60))
    write_tiff(two_sharp_images / "blank.tif", np.full((200, 200), 100, np.uint16))
    imageio.imwrite(two_sharp_images / "colour.png", np.zeros((100, 100, 3), np.uint8))
    out = tmp_path / "images.csv"
    result = subprocess.run([sys.executable, "-m", "focusnet", "predict", str(two_sharp_images), "--model",
                             str(random_model_dir), "--csv", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {r["image"].rsplit("/", 1)[1]: r for r in read_csv(out)}
    assert len(rows) == 5
    for name, reason in (("tiny.tif", "smaller than one"), ("blank.tif", "constant image"), ("colour.png", "RGB")):
        assert rows[name]["defocus_level"] == "nan" and rows[name]["patches"] == "0"
        assert name in result.stderr and reason in result.stderr
    measured = [r for n, r in rows.items() if n not in ("tiny.tif", "blank.tif", "colour.png")]
    assert all(r["defocus_level"] != "nan" for r in measured)
    assert "Traceback" not in result.stderr


def test_predict_refuses_a_broken_model(tmp_path, two_sharp_images):
    (tmp_path / "broken").mkdir()
    result = subprocess.run([sys.executable, "-m", "focusnet", "predict", str(two_sharp_images), "--model",
                             str(tmp_path / "broken"), "--csv", str(tmp_path / "o.csv")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert "not a focusnet model folder" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_reports_json(tmp_path, in_focus_paths, random_model_dir):
    result = subprocess.run([sys.executable, "-m", "focusnet", "evaluate", str(in_focus_paths[0]), "--model",
                             str(random_model_dir), "--json", "-", "--plots", str(tmp_path / "plots")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("exact_accuracy", "within_one_accuracy", "confusion", "patch_within_one_accuracy", "variants"):
        assert key in report
    confusion = np.array(report["confusion"])
    assert confusion.shape == (NUM_LEVELS, NUM_LEVELS) and np.all(confusion.sum(axis=1) == 1)
    assert report["exact_accuracy"] == pytest.approx(np.trace(confusion) / NUM_LEVELS)
    assert [(v["gain"], v["offset"]) for v in report["variants"]] == [(0.2, 0), (5, 0), (1, 100), (1, 1000)]
    for variant in report["variants"]:
        assert set(variant) == {"name", "gain", "offset", "exact_accuracy", "within_one_accuracy"}
    assert (tmp_path / "plots" / "confusion.png").is_file() and (tmp_path / "plots" / "certainty.png").is_file()


def test_train_command_records_a_reproducible_command(tmp_path, in_focus_paths):
    folder = tmp_path / "crops"
    folder.mkdir()
    for index, path in enumerate(in_focus_paths[:3]):
        write_tiff(folder / f"c{index}.tif", read_image(path)[:200, :300])
    out = tmp_path / "model"
    arguments = ["train", "--images", str(folder / "c0.tif"), str(folder / "c1.tif"), "--validation",
                 str(folder / "c2.tif"), "--out", str(out), "--steps", "4", "--batch-size", "4",
                 "--validate-every", "2", "--checkpoint-every", "2"]
    assert main(arguments + ["--stop-after", "2"]) == 0
    assert main(arguments + ["--resume"]) == 0
    card = (out / "README.md").read_text()
    assert "focusnet " + " ".join(arguments) in card
    assert json.loads((out / "config.json").read_text())["training"]["completed_steps"] == 4
