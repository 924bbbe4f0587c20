"""``focusnet simulate``: a defocus series of an in-focus image."""

from __future__ import annotations

from pathlib import Path

from .. import contract
from ..optics import Optics
from ..simulate import Sensor
from .arguments import add_modality, add_simulator_optics, optics_from_arguments, parse_levels, positive_float


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "simulate",
        help="simulate a defocus series of an in-focus image",
        description="Blur an in-focus image with the defocused point spread function of each level "
        "(Born & Wolf model), add Poisson noise and a camera offset/gain, and write "
        "<stem>_levelNN.tif (uint16) for each level plus <stem>_montage.png.",
    )
    parser.add_argument("image", help="in-focus single-channel image (16-bit TIFF or PNG)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    parser.add_argument("--levels", type=parse_levels, default=list(contract.LEVELS), metavar="LIST",
                        help="defocus levels, e.g. 0-10 (default), 0,5,10 or 2 (level L is z = L * z-step)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="random seed of the noise: same seed, same output (default %(default)s)")
    parser.add_argument("--no-noise", action="store_true", help="blur only: no Poisson noise")
    sensor = Sensor()
    camera = parser.add_argument_group("camera")
    camera.add_argument("--gain", type=positive_float, default=sensor.gain,
                        help="multiplies the signal above the offset (default %(default)s)")
    camera.add_argument("--offset", type=float, default=sensor.offset, metavar="COUNTS",
                        help="sensor offset of the output in counts (default: that of the input image, "
                             "estimated as its minimum)")
    camera.add_argument("--counts-per-electron", type=positive_float, default=sensor.counts_per_electron,
                        metavar="X", help="counts per photoelectron of the input camera; sets the Poisson noise "
                                          "level (default %(default)s)")
    add_modality(add_simulator_optics(parser, Optics(), "; defaults match BBBC006 (20x, NA 0.5, 2x binning)"))
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..figures import save_montage
    from ..images import read_image, write_tiff
    from ..simulate import simulate_series

    optics = optics_from_arguments(arguments)
    sensor = Sensor(gain=arguments.gain, offset=arguments.offset, counts_per_electron=arguments.counts_per_electron,
                    noise=not arguments.no_noise)
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
