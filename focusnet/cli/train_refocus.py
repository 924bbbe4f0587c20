"""``focusnet train-refocus``: a refocus U-Net trained on simulated defocus of in-focus images, or fine-tuned."""

from __future__ import annotations

import sys

from ..refocus.training import FEATURE_NETWORKS, FINE_TUNING_LEARNING_RATE, FINE_TUNING_STEPS, RefocusSettings
from .arguments import OPTICS_FLAGS, add_simulator_optics, positive_float, positive_int
from .train import recorded_command


def add_parser(commands) -> None:
    defaults = RefocusSettings()
    parser = commands.add_parser(
        "train-refocus",
        help="train a refocus model on simulated defocus of in-focus images",
        description="Train the refocus U-Net on pairs made by the simulator: random crops of in-focus images "
        "defocused to random levels (0 to --max-level) through random cameras with Poisson noise, each with the "
        "same crop in focus and without noise as the target. Loss: mean absolute error plus --feature-weight "
        "times a feature loss from a fixed network (the shipped focus classifier's convolutions, or random ones). "
        "Writes a model folder (config.json, weights.npz, README.md, training_log.csv) and checkpoints for "
        "--resume. Only give in-focus images.",
    )
    parser.add_argument("--images", nargs="+", required=True, metavar="PATH",
                        help="in-focus training images: files, folders or globs")
    parser.add_argument("--validation", dest="validation_images", nargs="+", metavar="PATH",
                        help="in-focus images held out for validation (default: the last training image; a single "
                             "image is split, its lower half held out)")
    parser.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write")
    parser.add_argument("--init", dest="init_model", nargs="?", const="shipped", metavar="MODEL_DIR",
                        help="fine-tune a refocus model folder (alone: the shipped one) for your optics: give --na, "
                             "--refractive-index, --wavelength and --pixel-size (or images that state it). Defaults "
                             f"then: {FINE_TUNING_STEPS} steps, learning rate {FINE_TUNING_LEARNING_RATE:g}")
    parser.add_argument("--steps", type=positive_int, metavar="N",
                        help=f"training steps (default {defaults.steps}, or {FINE_TUNING_STEPS} with --init)")
    parser.add_argument("--learning-rate", type=positive_float, metavar="LR",
                        help=f"initial Adam learning rate, cosine-decayed (default {defaults.learning_rate:g}, or "
                             f"{FINE_TUNING_LEARNING_RATE:g} with --init)")
    for name, help_text in (("batch_size", "pairs per step"), ("patch_size", "crop side in pixels (a multiple of 16)"),
                            ("max_level", "the most defocused level trained on"),
                            ("base_filters", "channels of the U-Net's first level"),
                            ("depth", "levels of the U-Net below its first"),
                            ("validate_every", "steps between validations"),
                            ("checkpoint_every", "steps between checkpoints")):
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=positive_int, metavar="N",
                            default=getattr(defaults, name), help=f"{help_text} (default %(default)s)")
    parser.add_argument("--feature-network", choices=FEATURE_NETWORKS, default=defaults.feature_network,
                        help="the fixed network of a feature loss: the shipped classifier's first convolutions, "
                             "random ones, or none (default %(default)s: the pixel loss alone, which measured best)")
    parser.add_argument("--feature-weight", type=float, default=defaults.feature_weight, metavar="W",
                        help="weight of the feature loss, with --feature-network (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, metavar="N",
                        help="random seed (default %(default)s)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in MODEL_DIR from its last checkpoint (same arguments)")
    parser.add_argument("--stop-after", type=positive_int, metavar="N",
                        help="stop after N steps of this run (checkpointed); continue later with --resume")
    add_simulator_optics(parser, None, ". Each default: what the images state (pixel size), else the --init "
                         "model's optics, else the shipped focus classifier's; other optics keep each level's blur in "
                         "um, so the classifier's levels keep their meaning")
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..refocus.training import refocus_training_optics, train_refocus

    fine_tuning = arguments.init_model is not None
    settings = RefocusSettings(
        steps=arguments.steps or (FINE_TUNING_STEPS if fine_tuning else RefocusSettings.steps),
        learning_rate=arguments.learning_rate or (FINE_TUNING_LEARNING_RATE if fine_tuning
                                                  else RefocusSettings.learning_rate),
        **{name: getattr(arguments, name) for name in (
            "batch_size", "patch_size", "max_level", "base_filters", "depth", "validate_every", "checkpoint_every",
            "feature_network", "feature_weight", "seed", "init_model")})
    optics = refocus_training_optics(arguments.init_model, arguments.images,
                                     **{field: getattr(arguments, field) for field in OPTICS_FLAGS})
    out = train_refocus(arguments.images, arguments.out, settings, arguments.validation_images or (), optics,
                        resume=arguments.resume, command=recorded_command(sys.argv[1:]),
                        stop_after=arguments.stop_after)
    print(f"refocus model written to {out}")
    return 0
