"""The ``focusnet`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__

DESCRIPTION = """\
focusnet: absolute focus quality of fluorescence microscope images, after
Yang et al., "Assessing microscope image focus quality with deep learning",
BMC Bioinformatics 19:77 (2018).
"""


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _add_optics_arguments(parser: argparse.ArgumentParser) -> None:
    from .optics import Optics

    defaults = Optics()
    group = parser.add_argument_group(
        "optics", "Born & Wolf defocus model; defaults match BBBC006 (20x, NA 0.5, 2x binning)"
    )
    group.add_argument("--wavelength", type=_positive_float, default=defaults.wavelength_um, metavar="UM",
                       help="emission wavelength in um (default %(default)s)")
    group.add_argument("--na", type=_positive_float, default=defaults.numerical_aperture,
                       help="numerical aperture of the objective (default %(default)s)")
    group.add_argument("--refractive-index", type=_positive_float, default=defaults.refractive_index, metavar="N",
                       help="refractive index of the immersion medium (default %(default)s)")
    group.add_argument("--pixel-size", type=_positive_float, default=defaults.pixel_size_um, metavar="UM",
                       help="pixel size in the sample plane in um (default %(default)s)")
    group.add_argument("--z-step", type=_positive_float, default=defaults.z_step_um, metavar="UM",
                       help="defocus per level in um: level L is z = L * z-step (default %(default)s)")


def _optics_from_arguments(arguments):
    from .optics import Optics

    return Optics(
        wavelength_um=arguments.wavelength,
        numerical_aperture=arguments.na,
        refractive_index=arguments.refractive_index,
        pixel_size_um=arguments.pixel_size,
        z_step_um=arguments.z_step,
    )


def _command_simulate(arguments) -> int:
    from .figures import save_montage
    from .images import read_image, write_tiff
    from .simulate import Sensor, simulate_series

    optics = _optics_from_arguments(arguments)
    sensor = Sensor(
        gain=arguments.gain,
        offset=arguments.offset,
        counts_per_electron=arguments.counts_per_electron,
        noise=not arguments.no_noise,
    )
    image = read_image(arguments.image)
    series = simulate_series(image, arguments.levels, sensor=sensor, optics=optics, seed=arguments.seed)
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(arguments.image).stem
    for level, simulated in zip(arguments.levels, series):
        write_tiff(out / f"{stem}_level{level:02d}.tif", simulated)
    montage = out / f"{stem}_montage.png"
    save_montage(
        series,
        [f"level {level}: z = {level * optics.z_step_um:g} um" for level in arguments.levels],
        montage,
        suptitle=f"{Path(arguments.image).name}: simulated defocus "
        f"(NA {optics.numerical_aperture}, {optics.wavelength_um * 1000:g} nm, "
        f"{optics.pixel_size_um} um/px{'' if sensor.noise else ', no noise'})",
    )
    print(f"wrote {len(series)} images {stem}_level{arguments.levels[0]:02d}.tif ... "
          f"{stem}_level{arguments.levels[-1]:02d}.tif to {out}")
    print(f"montage: {montage}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``focusnet`` command."""
    parser = argparse.ArgumentParser(
        prog="focusnet", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"focusnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    simulate = commands.add_parser(
        "simulate",
        help="simulate a defocus series of an in-focus image",
        description="Blur an in-focus image with the defocused point spread function of each level "
        "(Born & Wolf model), add Poisson noise and a camera offset/gain, and write "
        "<stem>_levelNN.tif (uint16) for each level plus <stem>_montage.png.",
    )
    simulate.add_argument("image", help="in-focus single-channel image (16-bit TIFF or PNG)")
    simulate.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    simulate.add_argument("--levels", type=parse_levels, default=list(range(11)), metavar="LIST",
                          help="defocus levels, e.g. 0-10 (default), 0,5,10 or 2 (level L is z = L * z-step)")
    simulate.add_argument("--seed", type=int, default=0, metavar="N",
                          help="random seed of the noise: same seed, same output (default %(default)s)")
    simulate.add_argument("--no-noise", action="store_true", help="blur only: no Poisson noise")
    camera = simulate.add_argument_group("camera")
    camera.add_argument("--gain", type=_positive_float, default=1.0,
                        help="multiplies the signal above the offset (default %(default)s)")
    camera.add_argument("--offset", type=float, default=None, metavar="COUNTS",
                        help="sensor offset of the output in counts (default: that of the input image, "
                             "estimated as its minimum)")
    camera.add_argument("--counts-per-electron", type=_positive_float, default=1.0, metavar="X",
                        help="counts per photoelectron of the input camera; sets the Poisson noise level "
                             "(default %(default)s)")
    _add_optics_arguments(simulate)
    simulate.set_defaults(handler=_command_simulate)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    from .images import ImageFormatError

    try:
        return arguments.handler(arguments)
    except (FileNotFoundError, ImageFormatError, ValueError) as error:
        print(f"focusnet {arguments.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
