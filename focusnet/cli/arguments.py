"""Argument types and the argument groups several commands share, each declared once.

Every argument's ``dest`` is the name of the library parameter it sets
(``pixel_size_um``, ``z_step_um``, ...), so a library error that names a
setting (:attr:`focusnet.errors.FocusnetError.setting`) is shown with the
flag that sets it, and defaults are read from the library, never typed here.
"""

from __future__ import annotations

import argparse
import math

from ..optics import DEFOCUS_PHASES, MODALITIES, Optics

#: The optics fields the command line sets, with their flags.
OPTICS_FLAGS = {"wavelength_um": "--wavelength", "numerical_aperture": "--na",
                "refractive_index": "--refractive-index", "pixel_size_um": "--pixel-size", "z_step_um": "--z-step"}


def parse_levels(text: str) -> list:
    """Parse a level list such as ``0-10``, ``0,3,7`` or ``0-2,8``.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything that is not non-negative integers and ranges.
    """
    levels = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                first, last = (int(bound) for bound in part.split("-", 1))
                if last < first:
                    raise ValueError
                levels.extend(range(first, last + 1))
            else:
                levels.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid level list {text!r}: use non-negative integers and ranges, e.g. 0-10 or 0,3,7"
        ) from None
    if not levels or min(levels) < 0:
        raise argparse.ArgumentTypeError(f"invalid level list {text!r}: levels must be >= 0")
    return sorted(set(levels))


def positive_float(text: str) -> float:
    """An argument that must be a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def fraction(text: str) -> float:
    """An argument that must be a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
    return value


def non_negative_int(text: str) -> int:
    """An argument that must be a whole number >= 0."""
    return _whole_number(text, 0)


def positive_int(text: str) -> int:
    """An argument that must be a whole number >= 1."""
    return _whole_number(text, 1)


_OPTICS_HELP = {
    "wavelength_um": ("UM", "emission wavelength in um"),
    "numerical_aperture": ("NA", "numerical aperture of the objective"),
    "refractive_index": ("N", "refractive index of the immersion medium (air 1.0, water 1.33, oil 1.515)"),
    "pixel_size_um": ("UM", "pixel size in the sample plane in um"),
    "z_step_um": ("UM", "defocus per level in um: level L is z = L * z-step"),
}


def add_simulator_optics(parser, defaults: Optics | None = None, description: str = "") -> None:
    """The simulator's optics (``simulate``, ``train``): each defaults to ``defaults``' value, or is unset (None).

    Parameters
    ----------
    defaults : Optics, optional
        Shown and used as defaults; None leaves every value unset for the
        library to choose (``train`` takes them from the images or the
        initial model).
    """
    group = parser.add_argument_group("optics", "Born & Wolf defocus model" + description)
    for field, flag in OPTICS_FLAGS.items():
        metavar, text = _OPTICS_HELP[field]
        default = getattr(defaults, field) if defaults is not None else None
        group.add_argument(flag, dest=field, type=positive_float, metavar=metavar, default=default,
                           help=text + (f" (default {default:g})" if defaults is not None else ""))
    return group


def add_defocus_phase(group, default: str | None) -> None:
    """The simulator's defocus phase."""
    group.add_argument("--defocus-phase", dest="defocus_phase", choices=DEFOCUS_PHASES, default=default,
                       help="the defocus phase of the simulated blur: exact (1 - cos theta) or paraxial (the "
                            "approximation the shipped model was trained with)"
                            + (f" (default {default})" if default else " (default: exact, or that of the initial "
                               "model when its optics are kept)"))


def add_modality(group) -> None:
    """How the simulated microscope forms its image: widefield, or a confocal with its pinhole."""
    defaults = Optics(modality="confocal")
    group.add_argument("--modality", dest="modality", choices=MODALITIES, default="widefield",
                       help="the microscope: widefield (a camera), confocal (a point scanner: excitation spot "
                            "times detection through the pinhole, which dims a thin layer out of focus) or "
                            "spinning-disk (a confocal whose other pinholes let some out-of-focus light through) "
                            "(default %(default)s)")
    group.add_argument("--pinhole", dest="pinhole_au", type=positive_float, default=defaults.pinhole_au,
                       metavar="AU", help="confocal: the pinhole's diameter in Airy units (default %(default)s)")
    group.add_argument("--pinhole-spacing", dest="pinhole_spacing", type=positive_float,
                       default=defaults.pinhole_spacing, metavar="X",
                       help="spinning disk: the distance between pinholes over their diameter (default %(default)s)")
    group.add_argument("--excitation-wavelength", dest="excitation_wavelength_um", type=positive_float,
                       metavar="UM", help="confocal: the excitation wavelength in um (default: 90 %% of the "
                                          "emission wavelength)")


def optics_from_arguments(arguments) -> Optics:
    """The simulator's optics from the optics group's values (and the modality's, where the command has them)."""
    modality = {field: getattr(arguments, field) for field in MODALITY_FLAGS
                if getattr(arguments, field, None) is not None}
    return Optics(**{field: getattr(arguments, field) for field in OPTICS_FLAGS}, **modality,
                  **({"defocus_phase": arguments.defocus_phase} if getattr(arguments, "defocus_phase", None) else {}))


def add_objective(parser) -> None:
    """The user's microscope: the pixel size to resample from and the objective that ``defocus_um`` is for."""
    group = parser.add_argument_group(
        "your microscope", "images are resampled to the model's pixel size, and levels are converted to "
        "micrometres of defocus for your objective; each default is the model's training optics")
    group.add_argument("--pixel-size", dest="pixel_size_um", type=positive_float, metavar="UM",
                       help="pixel size in the sample plane in um (overrides what files state; default: the "
                            "file's OME or ImageJ calibration, else the model's)")
    group.add_argument("--na", dest="numerical_aperture", type=positive_float, metavar="NA",
                       help="numerical aperture of your objective")
    group.add_argument("--refractive-index", dest="refractive_index", type=positive_float, metavar="N",
                       help=_OPTICS_HELP["refractive_index"][1].replace("the immersion medium", "its immersion medium"))
    group.add_argument("--wavelength", dest="wavelength_um", type=positive_float, metavar="UM",
                       help="emission wavelength in um")
    add_modality(group)


def add_model(parser, what: str = "measure with") -> None:
    """``--model``: a model folder, an exported bundle or an ONNX file; the shipped model by default."""
    parser.add_argument("--model", metavar="MODEL",
                        help=f"the model to {what}: a model folder, an exported bundle (.zip or folder) or an "
                             ".onnx file (default: the shipped model)")


def add_measuring(parser, what: str = "images") -> None:
    """What every measuring command takes: the model, the scale of float data and the microscope."""
    add_model(parser)
    parser.add_argument("--scale", type=positive_float, metavar="COUNTS",
                        help=f"for floating-point {what} in [0, 1]: the raw count 1.0 stands for (e.g. 65535)")
    add_objective(parser)


def add_resume(parser, what: str) -> None:
    """``--resume``: continue an interrupted batch from its journal."""
    parser.add_argument("--resume", action="store_true",
                        help=f"continue an interrupted run (the same command): measure only the {what} its journal "
                             "(<csv>.journal) lacks; the tables end as an uninterrupted run's")


def objective_from_arguments(model, arguments):
    """The user's objective: each value given, else the model's training optics."""
    from ..inference import objective_optics

    return objective_optics(model, arguments.wavelength_um, arguments.numerical_aperture, arguments.refractive_index,
                            **{field: getattr(arguments, field) for field in MODALITY_FLAGS})


#: The modality's flags' destinations (:func:`add_modality`): fields of :class:`~focusnet.optics.Optics`.
MODALITY_FLAGS = ("modality", "pinhole_au", "excitation_wavelength_um", "pinhole_spacing")


def flag_for(parser: argparse.ArgumentParser, setting: str | None) -> str | None:
    """The flag of ``parser`` that sets a library setting (its ``dest``), or None."""
    for action in parser._actions:  # argparse keeps no public index of its actions
        if setting is not None and action.dest == setting and action.option_strings:
            return action.option_strings[0]
    return None
