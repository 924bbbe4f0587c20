"""``focusnet train``: a classifier trained on simulated defocus of in-focus images, or fine-tuned."""

from __future__ import annotations

import shlex

from .. import contract
from ..train import FINE_TUNING_LEARNING_RATE, FINE_TUNING_STEPS, SHIPPED, TrainingSettings
from .arguments import OPTICS_FLAGS, add_defocus_phase, add_simulator_optics, fraction, positive_float, positive_int

#: Flags that only steer this invocation, not the run: left out of the command a model records.
RUN_CONTROL = {"--resume": 0, "--stop-after": 1}


def add_parser(commands) -> None:
    from ..network import ARCHITECTURES

    defaults = TrainingSettings()
    parser = commands.add_parser(
        "train",
        help="train a classifier on simulated defocus of in-focus images",
        description="Train the patch classifier on random 84x84 crops of in-focus images, degraded on the fly "
        "to uniformly random defocus levels with random gain/offset, Poisson noise, flips and rotations. "
        "Validation uses whole images held out from training. Writes a model folder (config.json, "
        "weights.npz, README.md model card, training_log.csv, training.png) and checkpoints for --resume. "
        "Only give in-focus images: each is treated as level 0.",
    )
    parser.add_argument("--images", nargs="+", required=True, metavar="PATH",
                        help="in-focus training images: files, folders or globs")
    parser.add_argument("--validation", dest="validation_images", nargs="+", metavar="PATH",
                        help="in-focus images held out for validation (default: the last training image; a single "
                             "training image is split, its lower half held out)")
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write")
    parser.add_argument("--init", dest="init_model", nargs="?", const=SHIPPED, metavar="MODEL_DIR",
                        help="fine-tune an existing model folder (alone: the shipped model) for your optics: give "
                             "--na, --refractive-index, --wavelength and --pixel-size (or images that state it), and "
                             f"a few in-focus images (one is split in two). Defaults then: {FINE_TUNING_STEPS} steps, "
                             f"learning rate {FINE_TUNING_LEARNING_RATE:g}")
    parser.add_argument("--config", dest="architecture", choices=sorted(ARCHITECTURES), default=None,
                        help="architecture: 'default' (compact) or 'paper' (Yang et al. 2018) (default: "
                             f"'{defaults.architecture}', or the --init model's)")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help=f"training steps (default {defaults.steps}, or {FINE_TUNING_STEPS} with --init)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, metavar="N",
                        help="patches per step (default %(default)s)")
    parser.add_argument("--learning-rate", type=positive_float, metavar="LR",
                        help=f"initial Adam learning rate, cosine-decayed (default {defaults.learning_rate:g}, or "
                             f"{FINE_TUNING_LEARNING_RATE:g} with --init)")
    parser.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                        help="random seed (default %(default)s)")
    parser.add_argument("--validate-every", type=positive_int, default=defaults.validate_every, metavar="N",
                        help="steps between validations (default %(default)s)")
    parser.add_argument("--checkpoint-every", type=positive_int, default=defaults.checkpoint_every, metavar="N",
                        help="steps between checkpoints (default %(default)s)")
    parser.add_argument("--photon-limited", dest="photon_limited_fraction", type=fraction,
                        default=defaults.photon_limited_fraction, metavar="F",
                        help="share of patches recorded in dim light (2 to 10^4 photons at the brightest in-focus "
                             "pixel) by a random sCMOS/CCD camera or EMCCD (default %(default)s)")
    parser.add_argument("--confocal", dest="confocal_fraction", type=fraction, default=defaults.confocal_fraction,
                        metavar="F", help="share of patches seen by a point-scanning confocal (1 Airy unit) at the "
                                          "distance where it blurs as much as the level, recorded in dim light "
                                          "by a PMT (default %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in MODEL_DIR from its last checkpoint (same arguments)")
    parser.add_argument("--stop-after", type=positive_int, metavar="N",
                        help="stop after N steps of this run (checkpointed); continue later with --resume")
    optics = add_simulator_optics(parser, None, ". Each default: what the training images state (pixel size), "
                                  "else the --init model's optics, else BBBC006's (20x, NA 0.5, 0.65 um pixels). "
                                  "With --init and other optics, --z-step defaults to the step at which each level "
                                  "blurs as much, in um, as the --init model's level")
    add_defocus_phase(optics, None)
    parser.set_defaults(run=run)


def recorded_command(argv) -> str:
    """The command a model records (to reproduce it): the arguments less those that only steer this run."""
    kept, skip = [], 0
    for argument in argv:
        name = argument.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in RUN_CONTROL:
            skip = RUN_CONTROL[name] if "=" not in argument else 0
        else:
            kept.append(argument)
    return "focusnet " + " ".join(shlex.quote(argument) for argument in kept)


def run(arguments) -> int:
    from ..train import run_settings, train, training_optics

    settings = run_settings(init_model=arguments.init_model, architecture=arguments.architecture,
                            steps=arguments.steps, learning_rate=arguments.learning_rate,
                            batch_size=arguments.batch_size, seed=arguments.seed,
                            validate_every=arguments.validate_every, checkpoint_every=arguments.checkpoint_every,
                            photon_limited_fraction=arguments.photon_limited_fraction,
                            confocal_fraction=arguments.confocal_fraction)
    optics = training_optics(arguments.init_model, arguments.images, defocus_phase=arguments.defocus_phase,
                             **{field: getattr(arguments, field) for field in OPTICS_FLAGS})
    out = train(arguments.images, arguments.out, settings, validation_images=arguments.validation_images or (),
                optics=optics, resume=arguments.resume, command=recorded_command(arguments.argv),
                stop_after=arguments.stop_after)
    print(f"model written to {out} (card: {out / contract.CARD_FILE}, curves: {out / contract.TRAINING_PLOT_FILE}); "
          f"level L = {optics.z_step_um:.3g} L um at NA {optics.numerical_aperture:g}, "
          f"{optics.pixel_size_um:g} um pixels")
    return 0
