"""Model cards are rendered from data: config.json and evaluation.json."""

import json

from conftest import HELD_OUT_IN_FOCUS
from focusnet.card import render_card, write_evaluation, write_model_card
from focusnet.cli import main
from focusnet.contract import CARD_FILE, EVALUATION_FILE, SHIPPED_MODEL_DIR


def test_the_shipped_card_is_what_its_data_renders():
    assert (SHIPPED_MODEL_DIR / CARD_FILE).read_text() == render_card(SHIPPED_MODEL_DIR)
    evaluation = json.loads((SHIPPED_MODEL_DIR / EVALUATION_FILE).read_text())
    # The card names the command that wrote its evaluation, and that command writes cards.
    assert evaluation["command"].startswith("focusnet evaluate ") and "--write-card" in evaluation["command"]
    assert evaluation["command"] in render_card(SHIPPED_MODEL_DIR)


def test_an_unevaluated_card_names_the_command_that_evaluates_it(model_copy):
    card = write_model_card(model_copy).read_text()
    assert "Not evaluated yet" in card
    assert f"focusnet evaluate HELD_OUT_IN_FOCUS_IMAGES --model {model_copy} --write-card" in card


def test_rendering_never_reads_the_previous_card(model_copy):
    (model_copy / CARD_FILE).write_text("## Evaluation\n\nstale figures\n## Known limits\n")
    write_model_card(model_copy)
    card = (model_copy / CARD_FILE).read_text()
    assert "stale figures" not in card and card == render_card(model_copy)


def test_figures_of_other_weights_are_marked_stale(model_copy):
    record = {"command": "focusnet evaluate X", "focusnet_version": "0", "platform": "test", "plots": [],
              "weights_sha256": "0" * 64, "real_images": [],
              "simulated": {"seed": 0, "images": ["a.tif"], "num_predictions": 11, "exact_accuracy": 1.0,
                            "within_one_accuracy": 1.0, "patch_certainty_threshold": 0.5,
                            "variants": [{"name": "gain x5", "exact_accuracy": 1.0, "within_one_accuracy": 1.0}],
                            "patch_within_one_accuracy": 1.0, "confident_patches": 3, "confusion": []}}
    write_evaluation(model_copy, record)
    assert "**Stale:" in (model_copy / CARD_FILE).read_text()
    record["weights_sha256"] = json.loads((model_copy / "config.json").read_text())["weights"]["sha256"]
    write_evaluation(model_copy, record)
    assert "**Stale:" not in (model_copy / CARD_FILE).read_text()


def test_a_format_1_folder_card_states_its_version_on_disk(model_copy):
    from helpers import as_version_1

    config = json.loads((model_copy / "config.json").read_text())
    (model_copy / "config.json").write_text(json.dumps(as_version_1(config)))
    assert "model format 1," in render_card(model_copy)


def test_write_card_needs_a_model_folder(tmp_path, capsys):
    assert main(["evaluate", str(HELD_OUT_IN_FOCUS), "--write-card"]) == 1
    assert "--write-card needs --model MODEL_DIR" in capsys.readouterr().err
