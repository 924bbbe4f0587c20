"""Model cards from a real evaluation: simulated defocus series through the model, then the card."""

import json

from conftest import HELD_OUT_IN_FOCUS
from focusnet.card import write_evaluation
from focusnet.cli import main
from focusnet.contract import CARD_FILE, EVALUATION_FILE, NUM_LEVELS
from focusnet.evaluate import check_real_images, evaluate, evaluation_record
from focusnet.images import read_image, write_tiff


def test_evaluation_figures_reach_the_card(tmp_path, model_copy):
    crop = tmp_path / "crop.tif"
    write_tiff(crop, read_image(HELD_OUT_IN_FOCUS)[:168, :252])
    result = evaluate([crop], model=model_copy, progress=False)
    checks = [check_real_images([crop], "in_focus", model_copy)]
    write_evaluation(model_copy, evaluation_record(result, checks, ["evaluation/confusion.png"], "focusnet evaluate X"))
    card = (model_copy / CARD_FILE).read_text()
    stored = json.loads((model_copy / EVALUATION_FILE).read_text())
    assert stored["simulated"]["num_predictions"] == NUM_LEVELS and "records" not in stored["simulated"]
    assert f"| as imaged | {result['exact_accuracy']:.1%} |" in card
    for camera in ("gain x0.2", "gain x5", "offset +100", "offset +1000"):
        assert f"| {camera} |" in card
    assert "Real in-focus images" in card and "`crop.tif`" in card and "focusnet evaluate X" in card


def test_the_evaluate_command_writes_the_card(tmp_path, model_copy):
    crop = tmp_path / "crop.tif"
    write_tiff(crop, read_image(HELD_OUT_IN_FOCUS)[:168, :252])
    arguments = ["evaluate", str(crop), "--model", str(model_copy), "--sharp", str(crop), "--write-card"]
    assert main(arguments) == 0
    evaluation = json.loads((model_copy / EVALUATION_FILE).read_text())
    assert evaluation["command"] == "focusnet " + " ".join(arguments)
    assert evaluation["plots"] == ["evaluation/confusion.png", "evaluation/certainty.png"]
    assert (model_copy / "evaluation" / "confusion.png").is_file()
    assert evaluation["command"] in (model_copy / CARD_FILE).read_text()
