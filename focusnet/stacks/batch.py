"""Many stacks in one run: outputs checked before anything is measured, each stack committed to a journal.

:func:`plan_stacks` expands the inputs and refuses, before any work, outputs
that would replace an input or each other; :func:`run_stacks` measures each
stack with :func:`~focusnet.stacks.predict_stack` and commits its records and
outputs to the run's journal (``<csv>.journal``, :mod:`focusnet.journal`)
before the next one starts, as ``focusnet predict`` does for images: an
interrupted run keeps every finished stack, and a resumed run ends with the
tables of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import List, Optional

from ..batch import journal_key, model_identity
from ..contract import STACK_COLUMNS, STACK_PLANE_COLUMNS
from ..errors import FocusnetError, InvalidParameterError
from ..files import check_output_file, check_output_folder
from ..images import find_images, read_stack
from ..records import failed_stack_record, plane_record, stack_record, write_csv
from .measure import output_stem, predict_stack, write_planes
from .plot import save_focus_curve

__all__ = ["BEST_PLANE_SUFFIX", "FOCUS_CURVE_SUFFIX", "StackPlan", "plan_stacks", "run_stacks"]

#: Outputs are named ``<stack stem>`` (``_t<T>`` for each time point) + these.
BEST_PLANE_SUFFIX = "_best.tif"
FOCUS_CURVE_SUFFIX = "_focus_curve.png"


@dataclasses.dataclass
class StackPlan:
    """What a stack run reads and writes, checked before anything is measured (:func:`plan_stacks`).

    Attributes
    ----------
    files : list of str
        The stacks, each once, in order.
    csv, summary_csv : Path
        One row per plane; one row per stack and time point.
    best_dir, plots : Path or None
        Folders for the best planes and the focus curves.
    """

    files: List[str]
    csv: Path
    summary_csv: Path
    best_dir: Optional[Path] = None
    plots: Optional[Path] = None

    @property
    def journal(self) -> Path:
        from ..journal import journal_path

        return journal_path(self.csv)


def default_summary_csv(csv) -> Path:
    """Where the per-stack table goes unless given: ``<csv stem>_stacks.csv`` beside the plane table."""
    csv = Path(csv)
    return csv.with_name(f"{csv.stem}_stacks.csv")


def plan_stacks(paths, csv, summary_csv=None, best_dir=None, plots=None) -> StackPlan:
    """Expand the inputs and check every output against them before anything is measured.

    Raises
    ------
    InputNotFoundError
        An argument that matches no file.
    InvalidParameterError
        The two tables are one file; an output that is an input; a table
        whose folder is missing or not writable; two stacks whose best planes
        or focus curves would share a file (same name in different folders).
    """
    files = find_images(paths)
    csv = Path(csv)
    summary_csv = Path(summary_csv) if summary_csv else default_summary_csv(csv)
    if summary_csv.resolve() == csv.resolve():
        raise InvalidParameterError(f"the plane and stack tables are the same file ({csv}); give two paths",
                                    setting="summary_csv")
    plan = StackPlan(files, csv, summary_csv, Path(best_dir) if best_dir else None, Path(plots) if plots else None)
    inputs = {Path(f).resolve(): f for f in files}
    for setting, path in (("csv", csv), ("summary_csv", summary_csv), ("csv", plan.journal)):
        if path.resolve() in inputs:
            raise InvalidParameterError(f"{path} is an input: refusing to write over it; choose another output path",
                                        setting=setting)
    # Like the best-plane and plot folders, the tables' folders are created if needed.
    check_output_file(csv, "csv", create_folder=True)
    check_output_file(summary_csv, "summary_csv", create_folder=True)
    for setting, suffix in (("best_dir", BEST_PLANE_SUFFIX), ("plots", FOCUS_CURVE_SUFFIX)):
        if getattr(plan, setting) is not None:
            _check_output_names(files, inputs, getattr(plan, setting), suffix, setting)
    return plan


def _check_output_names(files, inputs, folder: Path, suffix: str, setting: str) -> None:
    """Refuse two stacks writing one file into ``folder``, or an output replacing an input."""
    check_output_folder(folder, setting)
    seen = {}
    for f in files:
        stem = output_stem(f)  # a stack of several time points adds _t<T>: equal stems are the only clash
        if stem in seen:
            raise InvalidParameterError(f"{seen[stem]} and {f} would share the output {folder / (stem + suffix)}; "
                                        "measure them in separate runs or rename one", setting=setting)
        seen[stem] = f
        output = re.compile(re.escape(stem) + r"(_t\d+)?" + re.escape(suffix))
        for path, name in inputs.items():
            if path.parent == folder.resolve() and output.fullmatch(path.name):
                raise InvalidParameterError(f"an output of {f} in {folder} would replace the input {name}; choose "
                                            "another folder", setting=setting)


def _measure_stack(path, plan, model, options, bar) -> dict:
    """One stack's journal entry: its records, what to tell the user, and its outputs written."""
    entry = {"stack": path, "planes": [], "stacks": [], "lines": [], "warnings": [], "notes": [], "measured": 0}
    try:
        stack = read_stack(path, options["axes"])
        bar.total += stack.data.shape[0] * stack.data.shape[2]
        bar.refresh()
        results = predict_stack(path, model, channel=options["channel"], z_step_um=options["z_step_um"],
                                pixel_size_um=options["pixel_size_um"], objective=options["objective"],
                                scale=options["scale"], stack=stack, bar=bar)
    except FocusnetError as error:
        entry["stacks"].append(failed_stack_record(path))
        entry["warnings"].append(f"{error} (NaN row)")
        return entry
    for result in results:
        entry["planes"] += [plane_record(result, plane) for plane in result.planes]
        entry["stacks"].append(stack_record(result))
        entry["notes"] += [note for note in result.notes if note not in entry["notes"]]
        stem = output_stem(result.path, result.time if len(results) > 1 else None)
        if result.best_plane is None:
            reason = sorted({str(plane.error) for plane in result.planes})[0]
            entry["warnings"].append(f"{stem}: no plane could be measured ({reason})")
        else:
            entry["measured"] += 1
            best = result.planes[result.best_plane]
            entry["lines"].append(
                f"{stem}: best plane {result.best_plane} of {len(result.planes)}"
                + (f" (z {best.z_um:.2f} um; fitted {result.best_z_um:.2f} um)" if result.z_step_um
                   else f" (fitted {result.best_plane_fit:.2f})")
                + f", level {best.prediction.defocus_level}, certainty {result.best_plane_certainty:.2f}, "
                f"channel {result.channel_name}")
            if plan.best_dir:
                # Only a pixel size that was given or stated travels with the plane, never an assumed one.
                known = result.pixel_size_um if result.pixel_size_source != "assumed" else None
                planes = stack.data[result.time, :, result.best_plane]
                write_planes(plan.best_dir / f"{stem}{BEST_PLANE_SUFFIX}", planes, known, stack.channel_names)
        if plan.plots:
            save_focus_curve(result, plan.plots / f"{stem}{FOCUS_CURVE_SUFFIX}", defocus=options["defocus"])
    return entry


def run_stacks(plan: StackPlan, model, channel=None, axes=None, z_step_um=None, pixel_size_um=None, objective=None,
               scale=None, resume: bool = False, progress: bool = False, on_entry=None, on_note=None) -> list:
    """Measure every planned stack through a journal, then write both tables whole.

    Parameters
    ----------
    plan : StackPlan
    model : loaded model
    channel, axes, z_step_um, pixel_size_um, objective, scale
        As :func:`~focusnet.stacks.predict_stack` takes them, for every stack.
    resume : bool
        Continue the interrupted run whose journal is ``<csv>.journal``: only
        the stacks it lacks are measured.
    progress : bool
        Show a progress bar over the planes.
    on_entry : callable, optional
        Called with each stack's entry as it is committed: ``stack``,
        ``lines`` (each best plane, in words), ``warnings`` (why a stack or
        time point has none), ``notes``, ``measured`` (time points with a
        best plane).
    on_note : callable, optional
        Called with a message for each stack a resumed run measures again (see
        :func:`focusnet.journal.run_journaled`).

    Returns
    -------
    list of dict
        Every stack's entry, in input order.
    """
    from tqdm import tqdm

    from ..defocus import defocus_scale
    from ..inference import model_optics
    from ..journal import run_journaled

    model.prepare()  # a model that cannot run here (no TensorFlow, say) stops the run before the journal
    header = {"command": "stack", "inputs": [journal_key(f) for f in plan.files], "model": model_identity(model),
              "channel": channel, "axes": axes, "z_step_um": z_step_um, "pixel_size_um": pixel_size_um,
              "scale": scale, "objective": dataclasses.asdict(objective) if objective is not None else None,
              "summary_csv": str(plan.summary_csv.resolve()), "best_dir": str(plan.best_dir or ""),
              "plots": str(plan.plots or ""),
              # The records' columns: a journal of a focusnet whose tables had others is refused, not half-used.
              "columns": [STACK_COLUMNS, STACK_PLANE_COLUMNS]}
    options = {"channel": channel, "axes": axes, "z_step_um": z_step_um, "pixel_size_um": pixel_size_um,
               "objective": objective, "scale": scale,
               "defocus": defocus_scale(model_optics(model), objective or model_optics(model))}

    def measure(todo):
        for folder in (plan.best_dir, plan.plots):
            if folder:
                folder.mkdir(parents=True, exist_ok=True)
        todo = set(todo)
        with tqdm(total=0, desc="planes", unit="plane", disable=not progress) as bar:
            for path in plan.files:
                if journal_key(path) in todo:
                    yield journal_key(path), _measure_stack(path, plan, model, options, bar)

    def write(entries):
        write_csv(plan.csv, STACK_PLANE_COLUMNS, [record for entry in entries for record in entry["planes"]])
        write_csv(plan.summary_csv, STACK_COLUMNS, [record for entry in entries for record in entry["stacks"]])

    for table in (plan.csv, plan.summary_csv):
        table.parent.mkdir(parents=True, exist_ok=True)
    return run_journaled(plan.journal, header, header["inputs"], measure, write, resume=resume, on_entry=on_entry,
                         on_note=on_note)
