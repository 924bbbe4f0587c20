"""``focusnet evaluate-refocus``: measure a refocus model on real through-focus stacks and on simulated defocus."""

from __future__ import annotations

import json
from pathlib import Path

from .arguments import add_measuring, objective_from_arguments, positive_float, positive_int


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "evaluate-refocus",
        help="measure a refocus model on real through-focus stacks and on simulated defocus",
        description="For each plane of a real z-stack within --max-distance of its best plane (the sharpest by "
        "normalised variance, or --best-plane): PSNR and SSIM against the best plane after a least-squares "
        "intensity match, for the unrestored plane, the refocused plane and Richardson-Lucy deconvolution "
        "(30 iterations, focusnet's PSF for the stack's optics) with the true distance (an oracle) and with the "
        "classifier's estimate; the classifier's level before and after; object counts (Otsu segmentation). "
        "--synthetic does the same on simulated defocus of in-focus images the model was not trained on.",
    )
    parser.add_argument("stacks", nargs="*", metavar="STACK", help="real through-focus stacks (first time point)")
    parser.add_argument("--synthetic", nargs="+", metavar="IMAGE",
                        help="in-focus images the model was not trained on, defocused by the simulator")
    parser.add_argument("--refocus-model", metavar="MODEL_DIR", help="default: the shipped refocus model")
    parser.add_argument("--channel", metavar="C", help="the stacks' channel: index or name")
    parser.add_argument("--z-step", dest="z_step_um", type=positive_float, metavar="UM",
                        help="plane spacing in um (default: the file's)")
    parser.add_argument("--best-plane", dest="best_plane", type=int, metavar="N",
                        help="the reference plane (default: the sharpest by normalised variance)")
    parser.add_argument("--max-distance", type=positive_float, default=3.0, metavar="UM",
                        help="evaluate planes up to this far from the reference (default %(default)s)")
    parser.add_argument("--levels", type=positive_int, metavar="N",
                        help="--synthetic: levels 1 to N (default: the levels the model was trained on)")
    parser.add_argument("--json", metavar="OUT.json", help="write every figure as JSON")
    parser.add_argument("--label", default="", metavar="TEXT", help="names this evaluation in the JSON (reports)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="EVALUATION.json",
                        help="with --write-card: evaluations of other models (--json of this command, same images) "
                             "to compare with in the card, e.g. another loss")
    parser.add_argument("--plots", metavar="DIR", help="write PSNR plots (<stack>_refocus.png, synthetic_refocus.png)")
    parser.add_argument("--write-card", action="store_true",
                        help="store the evaluation in the model folder (evaluation.json), set the levels it restores "
                             "from --synthetic and render its card (README.md)")
    add_measuring(parser, "stacks")
    parser.set_defaults(run=run)


def run(arguments) -> int:
    from ..errors import InvalidParameterError
    from ..files import refuse_inputs_as_outputs, write_text
    from ..loader import load_model
    from ..refocus import card
    from ..refocus.model import load_refocus_model
    from ..refocus.validate import evaluate_stack, evaluate_synthetic
    from ..stacks.measure import output_stem

    if not arguments.stacks and not arguments.synthetic:
        raise InvalidParameterError("give real stacks, --synthetic in-focus images, or both")
    plots = Path(arguments.plots) if arguments.plots else None
    refuse_inputs_as_outputs(list(arguments.stacks) + list(arguments.synthetic or ()), [arguments.json])
    model, classifier = load_refocus_model(arguments.refocus_model), load_model(arguments.model)
    if arguments.write_card and not arguments.synthetic:
        raise InvalidParameterError("--write-card needs --synthetic: the restorable levels come from it")
    objective = objective_from_arguments(classifier, arguments)
    evaluation = {"label": arguments.label, "refocus_model": str(model.directory),
                  "weights_sha256": model.config["weights"]["sha256"], "stacks": []}
    if plots:
        plots.mkdir(parents=True, exist_ok=True)
    if arguments.synthetic:
        levels = range(1, arguments.levels + 1) if arguments.levels else None
        synthetic = evaluate_synthetic(arguments.synthetic, model, classifier, levels=levels, progress=True)
        evaluation["synthetic"] = synthetic
        for level, s in synthetic["summary"]["by_level"].items():
            print(f"synthetic level {level}: PSNR {s['unrestored']['psnr']:.2f} -> {s['refocused']['psnr']:.2f} dB "
                  f"(gain {s['gain_db']:+.2f}, worst {s['worst_gain_db']:+.2f}); Richardson-Lucy true distance "
                  f"{s['rl_true_distance']['psnr']:.2f}, estimated {s['rl_estimated_distance']['psnr']:.2f}")
        if plots:
            card.save_synthetic_plot(synthetic, plots / "synthetic_refocus.png")
    for stack in arguments.stacks:
        result = evaluate_stack(stack, model, classifier, arguments.channel, arguments.z_step_um,
                                arguments.pixel_size_um, objective, arguments.best_plane, arguments.max_distance)
        evaluation["stacks"].append(result)
        s = result["summary"]
        if not s:
            print(f"{stack}: no plane could be measured ({result['planes'][0]['skipped'] if result['planes'] else ''})")
            continue
        print(f"{stack}: {s['planes']} planes within {arguments.max_distance:g} um of plane {result['best_plane']}: "
              f"PSNR {s['unrestored']['psnr']:.2f} -> {s['refocused']['psnr']:.2f} dB (gain {s['gain_db']:+.2f}, "
              f"worst {s['worst_gain_db']:+.2f}); Richardson-Lucy true distance {s['rl_true_distance']['psnr']:.2f}, "
              f"estimated {s['rl_estimated_distance']['psnr']:.2f}; level {s['mean_level_before']:.2f} -> "
              f"{_level(s['mean_level_after'])}; object count error {s['object_count_error']:.0%}")
        if plots:
            card.save_stack_plot(result, plots / f"{output_stem(stack)}_refocus.png")
    text = json.dumps(evaluation, indent=1, default=float) + "\n"
    if arguments.json:
        write_text(arguments.json, text)
    if arguments.write_card:
        card.store_evaluation(model.directory, evaluation, [card.read_comparison(path) for path in arguments.compare])
        print(f"evaluation, restorable levels and card written to {model.directory}")
    return 0


def _level(mean) -> str:
    """A mean level, or why there is none (no refocused plane could be measured: no content, too noisy)."""
    return "unmeasured" if mean is None else f"{mean:.2f}"
