"""focusnet evaluate-refocus: a stack and simulated defocus, the JSON, the card and the refusals."""

import json
import shutil

import pytest
import tifffile

from focusnet.cli import main
from focusnet.refocus.card import restorable_levels
from focusnet.refocus.model import read_refocus_config


def test_evaluate_refocus_measures_a_stack_and_simulated_defocus_and_writes_the_card(
        tmp_path, synthetic_stack, refocus_model_dir, in_focus_image, capsys):
    stack, _ = synthetic_stack
    crop = tmp_path / "held_out.tif"
    tifffile.imwrite(crop, in_focus_image[:200, :260])
    model = shutil.copytree(refocus_model_dir, tmp_path / "model")
    out = tmp_path / "evaluation.json"
    assert main(["evaluate-refocus", str(stack), "--channel", "nuclei", "--max-distance", "4", "--synthetic",
                 str(crop), "--levels", "2", "--refocus-model", str(model), "--json", str(out), "--label", "tiny",
                 "--plots", str(tmp_path / "plots"), "--write-card"]) == 0
    evaluation = json.loads(out.read_text())
    (result,) = evaluation["stacks"]
    assert result["best_plane"] == 3 and sorted(p["plane"] for p in result["planes"]) == [1, 2, 4, 5]
    for plane in result["planes"]:
        assert set(plane) >= {"unrestored", "refocused", "rl_true_distance", "rl_estimated_distance", "objects",
                              "level_before", "level_after", "user_gets_refocused"}
    assert result["summary"]["planes"] == 4 and evaluation["label"] == "tiny"
    assert list(evaluation["synthetic"]["summary"]["by_level"]) == ["1", "2"]
    assert len(evaluation["synthetic"]["rows"]) == 2 * 5  # two levels, the camera as imaged and four variants
    # The card: the evaluation is stored and the restorable levels follow it.
    assert read_refocus_config(model)["restorable_levels"] == restorable_levels(evaluation["synthetic"])
    assert "Simulated defocus of held-out images" in (model / "README.md").read_text()
    assert (tmp_path / "plots" / "synthetic_refocus.png").is_file()
    assert (tmp_path / "plots" / "well_A01_refocus.png").is_file()


@pytest.mark.parametrize("arguments, message", [([], "give real stacks"),
                                                (["STACK", "--write-card"], "--write-card needs --synthetic")])
def test_evaluate_refocus_says_what_is_missing(arguments, message, synthetic_stack, refocus_model_dir, capsys):
    arguments = [str(synthetic_stack[0]) if a == "STACK" else a for a in arguments]
    assert main(["evaluate-refocus", *arguments, "--refocus-model", str(refocus_model_dir)]) == 1
    assert message in capsys.readouterr().err
