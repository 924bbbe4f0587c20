"""The CLI package: thin command modules, errors shown with the flag that fixes them, rules in the library."""

import ast
import re
from pathlib import Path

import pytest

from focusnet.cli import COMMANDS, build_parser, main
from focusnet.cli.arguments import flag_for
from focusnet.cli.train import recorded_command
from focusnet.errors import SETTINGS, FocusnetError, InvalidParameterError
from focusnet.optics import Optics
from focusnet.train import FINE_TUNING_LEARNING_RATE, FINE_TUNING_STEPS, TrainingSettings, run_settings, training_optics

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "focusnet"


def _command_parsers():
    parser = build_parser()
    (commands,) = [action for action in parser._actions if action.dest == "command"]
    return commands.choices


def _settings_named_in(paths):
    named = set()
    for path in paths:
        named |= set(re.findall(r'setting="(\w+)"', path.read_text()))
    return named


def test_every_setting_an_error_names_is_a_flag_of_some_command():
    named = _settings_named_in([*LIBRARY.rglob("*.py"), *(REPO / "export").glob("*.py")])
    assert named <= set(SETTINGS)
    flags = {setting: [name for name, sub in _command_parsers().items() if flag_for(sub, setting)]
             for setting in named}
    assert [setting for setting, commands in flags.items() if not commands] == []


def test_an_unknown_setting_is_a_bug_caught_at_once():
    with pytest.raises(ValueError, match="unknown setting"):
        InvalidParameterError("x", setting="pixelsize")
    assert FocusnetError("x").setting is None


def test_library_messages_name_no_flag_and_no_docs_page():
    flag = re.compile(r"""(Error|notes\.append)\([^)]*?(?<![\w-])--[a-z][\w-]+""", re.S)
    offenders = [str(path.relative_to(REPO)) for path in [*LIBRARY.rglob("*.py"), *(REPO / "export").glob("*.py")]
                 if "cli" not in path.parts and (flag.search(path.read_text()) or "see docs/" in path.read_text())]
    assert offenders == []


def test_the_cli_shows_the_flag_of_the_setting_an_error_names(tmp_path, capsys):
    stack = tmp_path / "stack.tif"
    import numpy as np
    import tifffile

    tifffile.imwrite(stack, np.full((4, 90, 90), 100, np.uint16), photometric="minisblack")  # no z spacing
    assert main(["evaluate-stack", str(stack)]) == 1
    assert capsys.readouterr().err.rstrip().endswith("give the plane spacing (--z-step)")


def test_command_modules_are_thin_and_declare_no_number_the_library_has():
    for module in COMMANDS:
        path = Path(module.__file__)
        assert len(path.read_text().splitlines()) <= 150, path.name
        tree = ast.parse(path.read_text())
        # No side channel on the argparse namespace: commands only read their arguments.
        assigned = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name) and target.value.id == "arguments"]
        assert assigned == [], path.name
    train = _command_parsers()["train"]
    defaults = TrainingSettings()
    assert {action.dest: action.default for action in train._actions if action.dest in
            ("batch_size", "validate_every", "checkpoint_every", "seed")} == {
        "batch_size": defaults.batch_size, "validate_every": defaults.validate_every,
        "checkpoint_every": defaults.checkpoint_every, "seed": defaults.seed}
    simulate = _command_parsers()["simulate"]
    optics = Optics()
    assert {action.dest: action.default for action in simulate._actions if action.dest in (
        "numerical_aperture", "pixel_size_um", "z_step_um")} == {
        "numerical_aperture": optics.numerical_aperture, "pixel_size_um": optics.pixel_size_um,
        "z_step_um": optics.z_step_um}


def test_training_defaults_differ_for_a_fresh_run_and_fine_tuning():
    fresh = run_settings()
    assert (fresh.steps, fresh.learning_rate, fresh.architecture) == (20000, 1e-3, "default")
    tuned = run_settings(init_model="shipped")
    assert (tuned.steps, tuned.learning_rate) == (FINE_TUNING_STEPS, FINE_TUNING_LEARNING_RATE)
    assert run_settings(init_model="shipped", steps=10).steps == 10
    with pytest.raises(InvalidParameterError, match="steps must be >= 1"):
        run_settings(steps=0)  # never silently the default


def test_training_optics_keep_the_initial_models_levels_unless_new_optics_are_given():
    shipped = training_optics("shipped")
    assert shipped.defocus_phase == "paraxial" and shipped.pixel_size_um == pytest.approx(0.65)
    oil = training_optics("shipped", numerical_aperture=1.45, refractive_index=1.512, wavelength_um=0.461,
                          pixel_size_um=0.13)
    assert oil.defocus_phase == "exact" and oil.z_step_um < shipped.z_step_um  # each level keeps its blur in um
    assert training_optics(defocus_phase="paraxial") == Optics(defocus_phase="paraxial")
    assert training_optics("shipped", defocus_phase="exact").defocus_phase == "exact"


def test_steps_zero_is_refused_on_the_command_line(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--images", "x.tif", "--out", "m", "--steps", "0"])
    assert stopped.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_the_recorded_command_leaves_out_what_only_steers_this_invocation():
    assert recorded_command(["train", "--images", "a.tif", "--out", "m", "--resume", "--stop-after", "5",
                             "--stop-after=7", "--seed", "1"]) == "focusnet train --images a.tif --out m --seed 1"
