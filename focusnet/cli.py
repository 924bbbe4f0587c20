"""The ``focusnet`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__, contract
from .errors import InvalidParameterError

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


def _add_optics_arguments(parser: argparse.ArgumentParser, training: bool = False) -> None:
    from .optics import Optics

    defaults = Optics()
    group = parser.add_argument_group(
        "optics", "Born & Wolf defocus model; defaults match BBBC006 (20x, NA 0.5, 2x binning)"
        + (", or those of the --init model" if training else ""))
    # Training resolves unset values itself (from the --init model), so they stay None there.
    group.add_argument("--wavelength", type=_positive_float, default=None if training else defaults.wavelength_um,
                       metavar="UM", help=f"emission wavelength in um (default {defaults.wavelength_um})")
    group.add_argument("--na", type=_positive_float, default=None if training else defaults.numerical_aperture,
                       help=f"numerical aperture of the objective (default {defaults.numerical_aperture})")
    group.add_argument("--refractive-index", type=_positive_float, metavar="N",
                       default=None if training else defaults.refractive_index,
                       help=f"refractive index of the immersion medium (default {defaults.refractive_index})")
    group.add_argument("--pixel-size", type=_positive_float, default=None if training else defaults.pixel_size_um,
                       metavar="UM", help=f"pixel size in the sample plane in um (default {defaults.pixel_size_um})")
    group.add_argument("--z-step", type=_positive_float, default=None if training else defaults.z_step_um,
                       metavar="UM", help=f"defocus per level in um: level L is z = L * z-step (default "
                       f"{defaults.z_step_um}; with --init and other optics: the step at which each level is "
                       "blurred as much, in um, as the --init model's level)")


def _add_objective_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "your microscope", "images are resampled to the model's pixel size, and levels are converted to "
        "micrometres of defocus for your objective; each default is the model's training optics")
    group.add_argument("--pixel-size", type=_positive_float, metavar="UM",
                       help="pixel size in the sample plane in um (overrides what files state; default: the "
                            "file's OME or ImageJ calibration, else the model's)")
    group.add_argument("--na", type=_positive_float, help="numerical aperture of your objective")
    group.add_argument("--refractive-index", type=_positive_float, metavar="N",
                       help="refractive index of its immersion medium (air 1.0, water 1.33, oil 1.515)")
    group.add_argument("--wavelength", type=_positive_float, metavar="UM", help="emission wavelength in um")


def _add_measuring_arguments(parser: argparse.ArgumentParser, what: str = "images") -> None:
    """--model, --scale and the objective: what every measuring command takes."""
    parser.add_argument("--model", metavar="DIR|BUNDLE",
                        help="model folder or exported bundle (.zip or folder); default: the shipped model")
    parser.add_argument("--scale", type=_positive_float, metavar="COUNTS",
                        help=f"for floating-point {what} in [0, 1]: the raw count 1.0 stands for (e.g. 65535)")
    _add_objective_arguments(parser)


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


def _without_run_control(argv):
    """The training arguments minus those that only control this run (--resume, --stop-after N)."""
    kept, skip = [], False
    for argument in argv:
        if skip:
            skip = False
        elif argument == "--resume":
            continue
        elif argument == "--stop-after":
            skip = True
        elif not argument.startswith("--stop-after="):
            kept.append(argument)
    return kept


def _stated_pixel_size(images):
    """The pixel size the training images state (None if none does); all must agree."""
    from .images import find_images, read_image_file

    stated = {path: read_image_file(path).pixel_size_um for path in find_images(images)}
    sizes = sorted({round(size, 6) for size in stated.values() if size is not None})
    if len(sizes) > 1:
        raise InvalidParameterError(f"the training images state different pixel sizes ({sizes} um); give --pixel-size "
                                    "or train on images of one pixel size")
    return sizes[0] if sizes else None


def _training_optics(arguments, initial, stated_pixel_size=None):
    """The simulator's optics: the flags given, else what the images state, else the --init model's (or BBBC006's)."""
    import dataclasses

    from .inference import model_optics
    from .optics import Optics
    from .train import fine_tuning_z_step

    base = model_optics(initial) if initial is not None else Optics()
    given = {"wavelength_um": arguments.wavelength, "numerical_aperture": arguments.na,
             "refractive_index": arguments.refractive_index,
             "pixel_size_um": arguments.pixel_size if arguments.pixel_size is not None else stated_pixel_size}
    given = {key: value for key, value in given.items() if value is not None}
    # New optics are simulated with the exact defocus phase; the initial model's own optics
    # (nothing given) keep its phase, so its levels keep their meaning.
    optics = dataclasses.replace(base, **given, **({"defocus_phase": "exact"} if given else {}))
    if arguments.z_step is not None:
        return dataclasses.replace(optics, z_step_um=arguments.z_step)
    if initial is not None and optics != base:
        return dataclasses.replace(optics, z_step_um=fine_tuning_z_step(base, optics))
    return optics


def _command_train(arguments) -> int:
    import shlex

    from .model import load_model_folder
    from .train import TrainingSettings, initial_model_folder, train

    initial = load_model_folder(initial_model_folder(arguments.init)) if arguments.init else None
    architecture = arguments.config or (initial.architecture.name if initial else "default")
    settings = TrainingSettings(
        architecture=architecture,
        steps=arguments.steps or (FINE_TUNING_STEPS if initial else 20000),
        batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate or (FINE_TUNING_LEARNING_RATE if initial else 1e-3),
        seed=arguments.seed,
        validate_every=arguments.validate_every,
        checkpoint_every=arguments.checkpoint_every,
        init_model=str(arguments.init) if arguments.init else None,
    )
    optics = _training_optics(arguments, initial, _stated_pixel_size(arguments.images))
    command = "focusnet " + " ".join(shlex.quote(a) for a in _without_run_control(arguments.argv))
    out = train(arguments.images, arguments.out, settings, validation_images=arguments.validation or (),
                optics=optics, resume=arguments.resume, command=command, stop_after=arguments.stop_after)
    print(f"model written to {out} (card: {out / contract.CARD_FILE}, curves: {out / contract.TRAINING_PLOT_FILE}); "
          f"level L = {optics.z_step_um:.3g} L um at NA {optics.numerical_aperture:g}, "
          f"{optics.pixel_size_um:g} um pixels")
    return 0


#: Fine-tuning defaults (--init): minutes on a laptop CPU.
FINE_TUNING_STEPS = 3000
FINE_TUNING_LEARNING_RATE = 3e-4


def _objective_from_arguments(model, arguments):
    from .inference import objective_optics

    return objective_optics(model, arguments.wavelength, arguments.na, arguments.refractive_index)


def _command_predict(arguments) -> int:
    from .batch import plan_batch, run_batch
    from .inference import model_optics
    from .loader import load_model

    plan = plan_batch(arguments.paths, arguments.csv, arguments.patches_csv, arguments.overlay_dir)
    model = load_model(arguments.model)
    objective = _objective_from_arguments(model, arguments)
    for note in plan.notes:
        print(f"focusnet predict: {note}", file=sys.stderr)

    def warn(entry):
        if entry["warning"]:
            from tqdm import tqdm

            tqdm.write(f"focusnet predict: warning: {entry['warning']} (measurements set to NaN)", file=sys.stderr)

    # A signal or a full disk leaves the journal with every image measured so far; say how to go on.
    arguments.on_stop = (f"the images measured so far are kept in {plan.journal}; run the same command with --resume "
                         "to measure the rest")
    entries = run_batch(plan, model, scale=arguments.scale, pixel_size_um=arguments.pixel_size, objective=objective,
                        resume=arguments.resume, progress=True, on_result=warn, workers=arguments.workers,
                        scheduler=arguments.scheduler)
    arguments.on_stop = None
    notes = []
    for entry in entries.values():
        notes += [note for note in entry["notes"] if note not in notes]
    for note in notes:
        print(f"focusnet predict: warning: {note}", file=sys.stderr)
    failed = sum(entry["summary"] is None for entry in entries.values())
    if len(entries) <= 20:
        width = max(len(Path(path).name) for path in entries)
        for path, entry in entries.items():
            print(f"{Path(path).name:<{width}}  {entry['summary'] or 'not measured'}")
    print(f"measured {len(entries) - failed} of {len(entries)} images with {model.name}: {plan.csv}"
          + (f", patches: {plan.patches_csv}" if plan.patches_csv else "")
          + (f", overlays: {plan.overlay_dir}" if plan.overlay_dir else ""))
    assumed = sum(entry["row"][-1] == "assumed" for entry in entries.values())
    if assumed:
        print(f"pixel size: {assumed} image(s) state none, so the model's {model_optics(model).pixel_size_um:g} um "
              "was assumed (give --pixel-size if yours differ); defocus_um is for "
              f"NA {objective.numerical_aperture:g}, n {objective.refractive_index:g}, "
              f"{objective.wavelength_um * 1000:g} nm")
    if failed:
        print(f"{failed} image(s) could not be measured (NaN rows, see warnings above)", file=sys.stderr)
    return 0


def _command_evaluate(arguments) -> int:
    import json
    import shlex

    from .card import evaluate_model_folder
    from .evaluate import check_real_images, evaluate, save_evaluation_plots

    if arguments.write_card:
        if not (arguments.model and (Path(arguments.model) / contract.CONFIG_FILE).is_file()):
            raise InvalidParameterError("--write-card needs --model MODEL_DIR, a model folder (the card is its "
                                        "README.md)")
        command = "focusnet " + " ".join(shlex.quote(a) for a in arguments.argv)
        record = evaluate_model_folder(arguments.model, arguments.paths, arguments.sharp, arguments.out_of_focus,
                                       seed=arguments.seed, command=command)
        result, checks = record["simulated"], record["real_images"]
        plots = [Path(arguments.model) / plot for plot in record["plots"]]
    else:
        result = evaluate(arguments.paths, model=arguments.model, seed=arguments.seed)
        checks = [check_real_images([folder], kind, arguments.model) for kind, folder in
                  (("in_focus", arguments.sharp), ("out_of_focus", arguments.out_of_focus)) if folder]
        plots = save_evaluation_plots(result, arguments.plots) if arguments.plots else []
    summary = {key: value for key, value in result.items() if key != "records"}
    out = sys.stderr if arguments.json == "-" else sys.stdout
    if arguments.json == "-":
        print(json.dumps(dict(summary, real_images=checks), indent=2))
    else:
        if arguments.json:
            from .files import write_text

            write_text(arguments.json, json.dumps(dict(summary, real_images=checks), indent=2) + "\n")
        print(f"{result['num_predictions']} predictions on {len(result['images'])} images: "
              f"exact {result['exact_accuracy']:.1%}, within one {result['within_one_accuracy']:.1%}, "
              f"confident patches within one {result['patch_within_one_accuracy']:.1%}")
        for variant in result["variants"]:
            print(f"  {variant['name']}: exact {variant['exact_accuracy']:.1%}, "
                  f"within one {variant['within_one_accuracy']:.1%}")
        for check in checks:
            passed = sum(row["as_expected"] for row in check["images"])
            print(f"  real {check['kind'].replace('_', '-')} images ({check['folder']}): {passed} of "
                  f"{len(check['images'])} as expected")
    for path in plots:
        print(f"plot: {path}", file=out)
    if arguments.write_card:
        print(f"model card: {Path(arguments.model) / contract.CARD_FILE} (from "
              f"{Path(arguments.model) / contract.EVALUATION_FILE})", file=out)
    return 0


def _command_evaluate_stack(arguments) -> int:
    from .files import refuse_inputs_as_outputs, write_text
    from .loader import load_model
    from .stack import evaluate_stack, read_stack, save_stack_plot, to_json, write_plane

    plot = Path(arguments.plots) / f"{Path(arguments.stack).stem}_focus_curve.png" if arguments.plots else None
    json_out = arguments.json if arguments.json != "-" else None
    refuse_inputs_as_outputs([arguments.stack], [plot, json_out, arguments.sharpest_out])
    model = load_model(arguments.model)
    stack = read_stack(arguments.stack)
    result = evaluate_stack(arguments.stack, model, z_step_um=arguments.z_step, pixel_size_um=arguments.pixel_size,
                            objective=_objective_from_arguments(model, arguments), scale=arguments.scale, stack=stack)
    out = sys.stderr if arguments.json == "-" else sys.stdout
    for note in result["notes"]:
        print(f"focusnet evaluate-stack: warning: {note}", file=sys.stderr)
    if arguments.json == "-":
        print(to_json(result))
    else:
        if json_out:
            write_text(json_out, to_json(result) + "\n")
        print(" plane   z um  dist um  level  defocus um  aggregate  content")
        for row in result["planes"]:
            if "error" in row:
                print(f"{row['plane']:6d} {row['z_um']:6.2f} {row['distance_um']:8.2f}  not measured: {row['error']}")
                continue
            bound = ">=" if row["defocus_um_lower_bound"] else "  "
            print(f"{row['plane']:6d} {row['z_um']:6.2f} {row['distance_um']:8.2f} {row['defocus_level']:6d} "
                  f"{bound}{row['defocus_um']:8.2f} {row['aggregate_certainty']:10.2f} {row['content_fraction']:7.0%}")
        print(f"sharpest plane by {result['sharpness_metric']}: {result['sharpest_plane']}; Spearman with the "
              f"distance from it: level {result['spearman_level']:.3f}, "
              f"defocus_um {result['spearman_defocus_um']:.3f}; "
              f"defocus_um / distance (geometric mean over {result['ratio_planes']} planes from 0.5 um to the first "
              f"level 10): {result['defocus_ratio']:.2f}; pixel size {result['pixel_size_um']:g} um "
              f"({result['pixel_size_source']}), z step {result['z_step_um']:g} um")
    if plot:
        plot.parent.mkdir(parents=True, exist_ok=True)
        print(f"plot: {save_stack_plot(result, plot)}", file=out)
    if arguments.sharpest_out:
        plane = stack.planes[result["sharpest_plane"]]
        # Only a pixel size that was given or stated travels with the plane, never an assumed one.
        known = result["pixel_size_um"] if result["pixel_size_source"] != "assumed" else None
        written = write_plane(arguments.sharpest_out, plane, known)
        print(f"sharpest plane ({result['sharpest_plane']}) written to {written}", file=out)
    return 0


def _command_stack(arguments) -> int:
    import csv

    from tqdm import tqdm

    from .contract import STACK_COLUMNS, STACK_PLANE_COLUMNS
    from .defocus import defocus_scale
    from .errors import FocusnetError
    from .files import refuse_inputs_as_outputs, replacing
    from .images import find_images, read_hyperstack
    from .inference import model_optics
    from .loader import load_model
    from .zstack import output_stem, plane_rows, predict_stack, save_focus_curve, stack_row, write_best_planes

    paths = find_images(arguments.paths)
    summary_csv = arguments.summary_csv or str(Path(arguments.csv).with_name(f"{Path(arguments.csv).stem}_stacks.csv"))
    if Path(summary_csv).resolve() == Path(arguments.csv).resolve():
        raise InvalidParameterError(f"--csv and --summary-csv are the same file ({arguments.csv}); give two paths")
    refuse_inputs_as_outputs(paths, [arguments.csv, summary_csv])
    inputs = {Path(path).resolve() for path in paths}
    model = load_model(arguments.model)
    objective = _objective_from_arguments(model, arguments)
    scale = defocus_scale(model_optics(model), objective)
    for folder in (arguments.best_dir, arguments.plots):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)

    def output(folder, name):
        path = Path(folder) / name
        if path.resolve() in inputs:
            raise InvalidParameterError(f"{path} is an input: refusing to write over it; choose another folder")
        return path

    measured, failed, notes = 0, 0, []
    with replacing(arguments.csv) as planes_file, replacing(summary_csv) as summary_file, \
            open(planes_file, "w", newline="") as planes_handle, \
            open(summary_file, "w", newline="") as summary_handle, \
            tqdm(total=0, desc="planes", unit="plane", disable=len(paths) == 0) as bar:
        plane_writer, summary_writer = csv.writer(planes_handle), csv.writer(summary_handle)
        plane_writer.writerow(STACK_PLANE_COLUMNS)
        summary_writer.writerow(STACK_COLUMNS)
        for path in paths:
            try:
                stack = read_hyperstack(path, arguments.axes)
                bar.total += stack.data.shape[0] * stack.data.shape[2]
                bar.refresh()
                results = predict_stack(path, model, channel=arguments.channel, z_step_um=arguments.z_step,
                                        pixel_size_um=arguments.pixel_size, objective=objective,
                                        scale=arguments.scale, stack=stack, bar=bar)
            except FocusnetError as error:
                failed += 1
                tqdm.write(f"focusnet stack: warning: {error} (NaN row)", file=sys.stderr)
                summary_writer.writerow([str(path), "nan", "nan", "0", "0"] + ["nan"] * (len(STACK_COLUMNS) - 5))
                continue
            for result in results:
                plane_writer.writerows(plane_rows(result))
                summary_writer.writerow(stack_row(result))
                notes += [note for note in result.notes if note not in notes]
                stem = output_stem(result, len(results))
                if result.best_plane is None:
                    failed += 1
                    reasons = sorted({str(plane.error) for plane in result.planes})[:1]
                    tqdm.write(f"focusnet stack: warning: {stem}: no plane could be measured ({reasons[0]})",
                               file=sys.stderr)
                else:
                    measured += 1
                    tqdm.write(f"{stem}: best plane {result.best_plane} of {len(result.planes)}"
                               + (f" (z {result.planes[result.best_plane].z_um:.2f} um; fitted {result.best_z_um:.2f}"
                                  " um)" if result.z_step_um else f" (fitted {result.best_plane_fit:.2f})")
                               + f", level {result.planes[result.best_plane].prediction.defocus_level}, certainty "
                               f"{result.best_plane_certainty:.2f}, channel {result.channel_name}")
                    if arguments.best_dir:
                        write_best_planes(result, stack, output(arguments.best_dir, f"{stem}_best.tif"))
                if arguments.plots:
                    save_focus_curve(result, output(arguments.plots, f"{stem}_focus_curve.png"), defocus=scale)
    for note in notes:
        print(f"focusnet stack: warning: {note}", file=sys.stderr)
    print(f"{measured} stack(s) with a best plane, {failed} without, with {model.name}: planes {arguments.csv}, "
          f"stacks {summary_csv}" + (f", best planes {arguments.best_dir}" if arguments.best_dir else "")
          + (f", focus curves {arguments.plots}" if arguments.plots else ""))
    return 0


def _command_plate(arguments) -> int:
    from .files import refuse_inputs_as_outputs, write_text
    from .plate import (
        DEFOCUSED_LEVEL,
        most_defocused,
        plate_format,
        read_results,
        save_defocused_montage,
        save_plate_map,
        summarise_wells,
        summary_text,
        write_wells_csv,
    )

    out = Path(arguments.out)
    names = {"map": "plate_map.png", "montage": "most_defocused.png", "wells": "wells.csv", "summary": "summary.txt"}
    paths = {key: out / name for key, name in names.items()}
    refuse_inputs_as_outputs([arguments.results], paths.values())
    results = read_results(arguments.results, arguments.pattern, arguments.image_name)
    wells = plate_format(results)
    summaries = summarise_wells(results)
    out.mkdir(parents=True, exist_ok=True)
    save_plate_map(summaries, wells, paths["map"], title=f"{Path(arguments.results).name}: {len(results)} images, "
                   f"{len(summaries)} wells")
    write_wells_csv(summaries, paths["wells"])
    text = summary_text(results, summaries, wells)
    write_text(paths["summary"], text)
    print(text, end="")
    written = [paths["map"], paths["wells"], paths["summary"]]
    defocused = most_defocused(results, arguments.montage)
    if arguments.montage and not defocused:
        print(f"no image at level >= {DEFOCUSED_LEVEL}: no montage")
    elif defocused:
        montage, notes = save_defocused_montage(defocused, paths["montage"], arguments.model)
        for note in notes:
            print(f"focusnet plate: warning: {note}", file=sys.stderr)
        if montage:
            written.append(montage)
        else:
            print("focusnet plate: warning: no montage: none of the most defocused images could be read",
                  file=sys.stderr)
    print("written: " + ", ".join(str(path) for path in written))
    return 0


def _command_export(arguments) -> int:
    if arguments.format == "bioimageio":
        from focusnet.export.bioimageio_package import export_bioimageio

        out = export_bioimageio(arguments.model, arguments.out, overwrite=arguments.overwrite)
        print(f"bioimage.io package written to {out} (check it with: bioimageio test {out})")
        return 0
    if arguments.format == "onnx":
        from focusnet.export.onnxexport import export_onnx

        out = export_onnx(arguments.model, arguments.out, overwrite=arguments.overwrite)
        print(f"ONNX model written to {out}: measure with it where TensorFlow is not installed "
              f"(pip install 'focusnet[onnx]'; focusnet predict --model {out})")
        return 0
    from focusnet.export import export_bundle

    out = export_bundle(arguments.model, arguments.out, overwrite=arguments.overwrite)
    kind = "zip" if out.suffix.lower() == ".zip" else "folder"
    print(f"bundle ({kind}) written to {out}")
    if kind == "zip":
        print("Fiji: unzip it into Fiji.app/models/microscope-image-quality/ (see docs/fiji.md).")
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
    simulate.add_argument("--levels", type=parse_levels, default=list(contract.LEVELS), metavar="LIST",
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

    from .evaluate import PATCH_CERTAINTY_THRESHOLD
    from .network import ARCHITECTURES
    from .simulate import CAMERA_VARIANTS

    train = commands.add_parser(
        "train",
        help="train a classifier on simulated defocus of in-focus images",
        description="Train the patch classifier on random 84x84 crops of in-focus images, degraded on the fly "
        "to uniformly random defocus levels with random gain/offset, Poisson noise, flips and rotations. "
        "Validation uses whole images held out from training. Writes a model folder (config.json, "
        "weights.npz, README.md model card, training_log.csv, training.png) and checkpoints for --resume. "
        "Only give in-focus images: each is treated as level 0.",
    )
    train.add_argument("--images", nargs="+", required=True, metavar="PATH",
                       help="in-focus training images: files, folders or globs")
    train.add_argument("--validation", nargs="+", metavar="PATH",
                       help="in-focus images held out for validation (default: the last training image; a single "
                            "training image is split, its lower half held out)")
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="model folder to write")
    train.add_argument("--init", nargs="?", const="shipped", metavar="MODEL_DIR",
                       help="fine-tune an existing model folder (alone: the shipped model) for your optics: give "
                            "--na, --refractive-index, --wavelength and --pixel-size, and a few in-focus images "
                            f"(one is split in two). Defaults then: {FINE_TUNING_STEPS} steps, learning rate "
                            f"{FINE_TUNING_LEARNING_RATE:g}")
    train.add_argument("--config", choices=sorted(ARCHITECTURES), default=None,
                       help="architecture: 'default' (compact) or 'paper' (Yang et al. 2018) (default: 'default', or "
                            "the --init model's)")
    train.add_argument("--steps", type=int, default=None, metavar="N",
                       help="training steps (default 20000, or 3000 with --init)")
    train.add_argument("--batch-size", type=int, default=64, metavar="N", help="patches per step (default %(default)s)")
    train.add_argument("--learning-rate", type=_positive_float, default=None, metavar="LR",
                       help="initial Adam learning rate, cosine-decayed (default 1e-3, or 3e-4 with --init)")
    train.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default %(default)s)")
    train.add_argument("--validate-every", type=int, default=500, metavar="N",
                       help="steps between validations (default %(default)s)")
    train.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                       help="steps between checkpoints (default %(default)s)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in MODEL_DIR from its last checkpoint (same arguments)")
    train.add_argument("--stop-after", type=int, metavar="N",
                       help="stop after N steps of this run (checkpointed); continue later with --resume")
    _add_optics_arguments(train, training=True)
    train.set_defaults(handler=_command_train)

    predict = commands.add_parser(
        "predict",
        help="measure the focus of images (per image and per patch)",
        description="Measure how far each 84x84 region of each image is from focus (defocus level 0-10, "
        "0 = in focus, and the distance in um for your objective), how certain that is, and the answer for the "
        "whole image. Regions without structure above their noise are marked and left out. Images that cannot "
        "be measured (too small, constant, no content, colour, stacks) get a NaN row and a warning.",
    )
    predict.add_argument("paths", nargs="+", metavar="PATH", help="images, folders or glob patterns")
    predict.add_argument("--csv", required=True, metavar="OUT.csv",
                         help="one row per image: " + ", ".join(contract.IMAGE_COLUMNS[:5]) + ", ..., patches")
    predict.add_argument("--patches-csv", metavar="OUT.csv",
                         help="one row per patch: " + ", ".join(contract.PATCH_COLUMNS[:8]) + ", ...")
    predict.add_argument("--overlay-dir", metavar="DIR",
                         help="write <stem>_focus.png: patch borders coloured by level (hue) and certainty "
                              "(pale = uncertain); created if needed")
    cluster = predict.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="measure on a local Dask cluster of N processes (each loads the model once)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="measure on a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (its workers "
                              "must see the images, the model and the overlay folder at the same paths)")
    predict.add_argument("--resume", action="store_true",
                         help="continue an interrupted run (the same command): measure only the images its journal "
                              "(<csv>.journal) lacks; the tables end as an uninterrupted run's")
    _add_measuring_arguments(predict)
    predict.set_defaults(handler=_command_predict)

    evaluate = commands.add_parser(
        "evaluate",
        help="accuracy on simulated defocus series of in-focus images",
        description="Synthesise every level 0-10 from each in-focus image (fixed seed), predict, and report "
        "image-level exact and within-one accuracy, the confusion matrix, patch-level within-one accuracy "
        f"(patches with certainty >= {PATCH_CERTAINTY_THRESHOLD:g}), and the same under each camera change: "
        + ", ".join(camera.name for camera in CAMERA_VARIANTS) + ". "
        "Only give images the model was not trained on.",
    )
    evaluate.add_argument("paths", nargs="+", metavar="PATH", help="in-focus images, folders or globs")
    evaluate.add_argument("--model", metavar="DIR", help="model folder or bundle (default: the shipped model)")
    evaluate.add_argument("--json", metavar="OUT.json", help="write the results as JSON ('-': standard output)")
    evaluate.add_argument("--plots", metavar="DIR", help="write confusion.png and certainty.png (with "
                          "--write-card they go to MODEL_DIR/evaluation)")
    evaluate.add_argument("--sharp", metavar="DIR", help="also measure real in-focus images (expected level <= 1)")
    evaluate.add_argument("--out-of-focus", metavar="DIR",
                          help="also measure real out-of-focus images (expected level >= 3)")
    evaluate.add_argument("--write-card", action="store_true",
                          help="write the figures to MODEL_DIR/evaluation.json and render its model card "
                               "(README.md) from config.json and evaluation.json")
    evaluate.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed (default %(default)s)")
    evaluate.set_defaults(handler=_command_evaluate)

    stack = commands.add_parser(
        "evaluate-stack",
        help="check focusnet on a real through-focus stack of your microscope",
        description="Measure every plane of a real z-stack (multi-page TIFF, ImageJ hyperstack or OME-TIFF; z step "
        "and pixel size from the file or the options), pick the sharpest plane by normalised variance (a classic "
        "sharpness metric), and report the Spearman correlation of the level and of defocus_um with the distance "
        "from it, and how defocus_um compares with that distance. Run this on your own stacks before trusting "
        "focusnet's absolute answers for your optics.",
    )
    stack.add_argument("stack", metavar="STACK", help="a single-channel z-stack")
    stack.add_argument("--z-step", type=_positive_float, metavar="UM", help="plane spacing in um (default: the file's)")
    _add_measuring_arguments(stack, "stacks")
    stack.add_argument("--plots", metavar="DIR", help="write <stack>_focus_curve.png: level and defocus_um against z")
    stack.add_argument("--json", metavar="OUT.json", help="write the results as JSON ('-': standard output)")
    stack.add_argument("--sharpest-out", metavar="FILE.tif",
                       help="write the sharpest plane as a TIFF stating its pixel size (to train --init from it)")
    stack.set_defaults(handler=_command_evaluate_stack)

    zstack = commands.add_parser(
        "stack",
        help="pick the best plane of z-stacks, with each plane's level and focus curves",
        description="Measure every plane of z-stacks (multi-page TIFF, ImageJ hyperstacks, OME-TIFF; several "
        "channels and time points) with one model load: per plane the level, expected level, defocus_um, "
        "certainties and content; per stack and time point the best plane (lowest expected level, ties to the "
        "higher certainty), a sub-plane fit, and its certainty. Stacks that cannot be read get a NaN row and "
        "a warning.",
    )
    zstack.add_argument("paths", nargs="+", metavar="PATH", help="z-stack TIFFs, folders or glob patterns")
    zstack.add_argument("--csv", required=True, metavar="OUT.csv",
                        help="one row per plane: " + ", ".join(contract.STACK_PLANE_COLUMNS))
    zstack.add_argument("--summary-csv", metavar="OUT.csv",
                        help="one row per stack and time point: " + ", ".join(contract.STACK_COLUMNS[:9]) + ", ... "
                             "(default: <csv stem>_stacks.csv beside --csv)")
    zstack.add_argument("--channel", metavar="C",
                        help="the channel to judge focus by: index or name (default: the first)")
    zstack.add_argument("--axes", metavar="AXES",
                        help="the data's axes, overriding the file's metadata (e.g. ZYX, CZYX, TZCYX)")
    zstack.add_argument("--best-dir", metavar="DIR",
                        help="write <stack>_best.tif: the best plane of every channel, with the source's pixel size")
    zstack.add_argument("--plots", metavar="DIR",
                        help="write <stack>_focus_curve.png: level and defocus_um against z with a certainty band")
    zstack.add_argument("--z-step", type=_positive_float, metavar="UM",
                        help="plane spacing in um (default: the file's)")
    _add_measuring_arguments(zstack, "stacks")
    zstack.set_defaults(handler=_command_stack)

    plate = commands.add_parser(
        "plate",
        help="plate maps of focus from focusnet's or CellProfiler's results",
        description="Draw a plate map (96, 384 or 1536 wells, chosen from the wells present) of each well's "
        "defocus level (its worst site, and the mean) and certainty, from focusnet predict's CSV or CellProfiler's "
        "Image.csv (ImageFocus_* columns). Wells and sites come from Metadata_Well/Metadata_Site columns or from "
        "file names (A01, a01, r01c01f01, _A01_s1_w1; --pattern for others). Also writes wells.csv, a summary "
        "(images per level, wells with any site at level >= 3) and a montage of the most defocused images with "
        "their overlays.",
    )
    plate.add_argument("results", metavar="RESULTS.csv", help="focusnet predict --csv output, or CellProfiler's "
                       "Image.csv")
    plate.add_argument("--out", required=True, metavar="DIR",
                       help="writes plate_map.png, wells.csv, summary.txt and most_defocused.png")
    plate.add_argument("--pattern", metavar="REGEX",
                       help="regular expression for file names with named groups well (or row and col) and site, "
                            r"e.g. '(?P<well>[A-P]\d\d)_site(?P<site>\d+)'")
    plate.add_argument("--image-name", metavar="NAME",
                       help="CellProfiler tables measuring several images: which one (default: the first)")
    plate.add_argument("--montage", type=int, default=12, metavar="N",
                       help="overlays of up to N most defocused images, level >= 3 (measured again; 0: none; "
                            "default %(default)s)")
    plate.add_argument("--model", metavar="DIR|BUNDLE", help="model for the montage's overlays (default: shipped)")
    plate.set_defaults(handler=_command_plate)

    export = commands.add_parser(
        "export",
        help="write a SavedModel bundle for Fiji and CellProfiler",
        description=f"Write a model as a TensorFlow 1 SavedModel bundle (tag '{contract.BUNDLE_TAG}', signature "
        f"'{contract.BUNDLE_SIGNATURE}': input '{contract.BUNDLE_INPUT_KEY}' "
        f"{contract.BUNDLE_INPUT_SPEC['shape']} {contract.BUNDLE_INPUT_SPEC['values']} -> outputs "
        + ", ".join(f"'{key}' {shape}" for key, shape in contract.BUNDLE_OUTPUT_SPECS.items())
        + ") that Fiji's Microscope Image Focus Quality plugin (TensorFlow 1.12-1.15), "
        "the MeasureImageFocus CellProfiler plugin and 'focusnet predict --model' load. It carries a "
        f"{contract.MANIFEST_FILE} manifest with the SHA-256 of every file.",
    )
    export.add_argument("--model", metavar="DIR", help="model folder (default: the shipped model)")
    export.add_argument("--out", required=True, metavar="PATH",
                        help="PATH.zip for a zip (as Fiji downloads it), otherwise an unzipped bundle folder")
    export.add_argument("--format", choices=["bundle", "onnx", "bioimageio"], default="bundle",
                        help="bundle: the TensorFlow SavedModel for Fiji and CellProfiler (default); onnx: the patch "
                             "classifier as MODEL.onnx for onnxruntime (no TensorFlow needed to measure); "
                             "bioimageio: a bioimage.io model package NAME.zip (TensorFlow and ONNX weights)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an existing bundle at PATH (without it, an existing PATH is refused)")
    export.set_defaults(handler=_command_export)
    return parser


class Terminated(BaseException):
    """SIGTERM (a cluster scheduler's kill), raised where the program is, as Ctrl-C raises KeyboardInterrupt."""


def _raise_on_sigterm():
    """Turn SIGTERM into :class:`Terminated` while a command runs; returns what restores the old handler."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parser.parse_args(argv)
    arguments.argv = argv
    from .errors import FocusnetError

    arguments.on_stop = None  # what a command has kept so far, and how to go on, should it be stopped
    terminate = _raise_on_sigterm()
    try:
        return arguments.handler(arguments)
    except (FocusnetError, OSError) as error:  # OSError: an output that cannot be written, a full disk
        print(f"focusnet {arguments.command}: error: {error}"
              + (f"; {arguments.on_stop}" if arguments.on_stop else ""), file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Terminated) as stop:
        signal_name, status = ("SIGTERM", 143) if isinstance(stop, Terminated) else ("SIGINT", 130)
        print(f"focusnet {arguments.command}: stopped by {signal_name}"
              + (f"; {arguments.on_stop}" if arguments.on_stop else ""), file=sys.stderr)
        return status
    finally:
        terminate()


if __name__ == "__main__":
    sys.exit(main())
