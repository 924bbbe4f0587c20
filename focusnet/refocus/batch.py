"""Refocusing many images: outputs checked before anything runs, one journal entry per image, resumable.

Each input ``<stem>.<ext>`` gives ``OUT/<stem>_refocused.tif`` (same pixel
type and calibration) and one CSV row (:data:`REFOCUS_COLUMNS`). Images that
are not refocused (no content, in focus, beyond the model's range) are
copied unchanged to that name or skipped, as the user chooses; the CSV says
why. Unreadable images get a row with the reason and no output. The batch
runs through :func:`focusnet.journal.run_journaled`, as ``focusnet predict``
does: an interrupted run keeps every finished image and ``resume=True``
finishes it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import List, Optional

from ..errors import FocusnetError, InvalidParameterError
from ..files import check_output_file, check_output_folder
from ..images import find_images

#: Suffix of a refocused image's file name (before ``.tif``).
REFOCUSED_SUFFIX = "_refocused"
MONTAGE_SUFFIX = "_refocus.png"
#: One row per image.
REFOCUS_COLUMNS = ["image", "output", "refocused", "improved", "reason", "defocus_level_before",
                   "aggregate_certainty_before", "defocus_um_before", "defocus_level_after",
                   "aggregate_certainty_after", "defocus_um_after", "pixel_size_um", "pixel_size_source", "seconds"]
#: What happens to an image that is not refocused.
NOT_REFOCUSED_CHOICES = ("copy", "skip")


@dataclasses.dataclass
class RefocusPlan:
    """What a refocus batch reads and writes (:func:`plan_refocus`)."""

    files: List[str]
    out_dir: Path
    csv: Path
    montage_dir: Optional[Path] = None
    notes: List[str] = dataclasses.field(default_factory=list)

    @property
    def journal(self) -> Path:
        from ..journal import journal_path

        return journal_path(self.csv)

    def output(self, path) -> Path:
        return self.out_dir / f"{_stem(path)}{REFOCUSED_SUFFIX}.tif"

    def montage(self, path) -> Optional[Path]:
        return self.montage_dir / f"{_stem(path)}{MONTAGE_SUFFIX}" if self.montage_dir else None


def _stem(path) -> str:
    from ..stacks.measure import output_stem

    return output_stem(path)


def plan_refocus(paths, out_dir, csv, montage_dir=None) -> RefocusPlan:
    """Expand the inputs and check every output against them before anything runs.

    Raises
    ------
    InputNotFoundError
        An argument that matches no image.
    InvalidParameterError
        An output that would replace an input or another image's output (two inputs of one name in
        different folders), or an output folder that is a file or not writable.
    """
    out_dir, csv = Path(out_dir), Path(csv)
    montage_dir = Path(montage_dir) if montage_dir else None
    for setting, folder in (("out_dir", out_dir), ("montage_dir", montage_dir)):
        if folder is not None:
            check_output_folder(folder, setting)
    duplicates = []
    files = [f for f in find_images(paths, duplicates=duplicates)
             if not Path(f).name.endswith(MONTAGE_SUFFIX)]
    if not files:
        raise InvalidParameterError("no images left to refocus")
    plan = RefocusPlan(files, out_dir, csv, montage_dir)
    if duplicates:
        plan.notes.append(f"{len(duplicates)} image(s) named more than once, refocused once")
    inputs = {Path(f).resolve(): f for f in files}
    for setting, path in (("csv", csv), ("csv", plan.journal)):
        if path.resolve() in inputs:
            raise InvalidParameterError(f"{path} is an input image: refusing to write over it; choose another "
                                        "output path", setting=setting)
    check_output_file(csv, "csv")
    for setting, output_of in (("out_dir", plan.output), ("montage_dir", plan.montage)):
        if setting == "montage_dir" and montage_dir is None:
            continue
        seen = {}
        for f in files:
            output = output_of(f).resolve()
            if output in inputs:
                raise InvalidParameterError(f"the output of {f} would replace the input {inputs[output]}; choose "
                                            "another output folder", setting=setting)
            if output in seen:
                raise InvalidParameterError(f"{seen[output]} and {f} would share the output {output_of(f)}; refocus "
                                            "them in separate runs or rename one", setting=setting)
            if output in (csv.resolve(), plan.journal.resolve()):
                raise InvalidParameterError(f"{csv} would be replaced by the output of {f}; choose another path",
                                            setting="csv")
            seen[output] = f
    return plan


def _prediction_cells(prediction, suffix: str) -> dict:
    nan = float("nan")
    if prediction is None:
        return {f"defocus_level{suffix}": nan, f"aggregate_certainty{suffix}": nan, f"defocus_um{suffix}": nan}
    return {f"defocus_level{suffix}": int(prediction.defocus_level),
            f"aggregate_certainty{suffix}": float(prediction.aggregate_certainty),
            f"defocus_um{suffix}": float(prediction.defocus_um)}


def refocus_record(path, result=None, output: str = "", error=None) -> dict:
    """The CSV row of one image (:data:`REFOCUS_COLUMNS`)."""
    nan = float("nan")
    before = result.before if result is not None else None
    return {
        "image": str(path), "output": output,
        "refocused": "yes" if result is not None and result.refocused else "no",
        "improved": ("yes" if result.improved else "no") if result is not None and result.refocused else "",
        "reason": result.reason if result is not None else str(error),
        **_prediction_cells(before, "_before"),
        **_prediction_cells(result.after if result is not None else None, "_after"),
        "pixel_size_um": float(before.pixel_size_um) if before is not None else nan,
        "pixel_size_source": before.pixel_size_source if before is not None else "",
        "seconds": float(result.seconds) if result is not None else nan,
    }


def refocus_entry(path, model, classifier, plan: RefocusPlan, not_refocused: str = "copy", scale=None,
                  pixel_size_um=None, objective=None) -> dict:
    """Refocus one image and write its outputs: the journal entry of a batch."""
    from ..figures import save_montage
    from ..images import read_image_file
    from ..stacks.measure import write_planes
    from .restore import refocus_image

    try:
        image_file = read_image_file(path)
        given = pixel_size_um is not None
        size = pixel_size_um if given else image_file.pixel_size_um
        result = refocus_image(image_file.pixels, model, classifier, scale=scale, name=str(path),
                               pixel_size_um=size, pixel_size_source="given" if given else "file" if size else None,
                               objective=objective)
    except FocusnetError as error:
        return {"image": str(path), "record": refocus_record(path, error=error), "warning": str(error)}
    # Only a pixel size that was given or stated travels with the output, never an assumed one.
    known = result.before.pixel_size_um if result.before is not None and \
        result.before.pixel_size_source != "assumed" else None
    pixels = result.image if result.refocused else image_file.pixels if not_refocused == "copy" else None
    output = ""
    if pixels is not None:
        plan.out_dir.mkdir(parents=True, exist_ok=True)
        output = str(write_planes(plan.output(path), pixels, known))
    if plan.montage_dir is not None and result.refocused:
        plan.montage_dir.mkdir(parents=True, exist_ok=True)
        after = result.after
        titles = [f"input: level {result.before.defocus_level}",
                  f"refocused: level {after.defocus_level}" if after is not None else "refocused: not measured"]
        save_montage([image_file.pixels, result.image], titles, plan.montage(path), suptitle=Path(path).name,
                     columns=2)
    record = refocus_record(path, result, output)
    return {"image": str(path), "record": record, "warning": None}


def refocus_batch(plan: RefocusPlan, model, classifier, not_refocused: str = "copy", scale=None,
                  pixel_size_um=None, objective=None, resume: bool = False, progress: bool = False,
                  on_result=None, on_note=None) -> list:
    """Refocus a planned batch through a journal, then write the CSV (whole, in input order).

    ``on_note`` is called with a message for each image a resumed run refocuses again (see
    :func:`focusnet.journal.run_journaled`).

    Returns
    -------
    list of dict
        The journal's entries (``record``, ``warning``), in input order.
    """
    from tqdm import tqdm

    from ..batch import journal_key, model_identity
    from ..journal import run_journaled
    from ..records import write_csv

    if not_refocused not in NOT_REFOCUSED_CHOICES:
        raise InvalidParameterError(f"not_refocused must be one of {NOT_REFOCUSED_CHOICES}, got {not_refocused!r}",
                                    setting="not_refocused")
    if pixel_size_um is not None and not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise InvalidParameterError("pixel size must be a positive number of micrometres", setting="pixel_size_um")
    classifier.prepare()  # a classifier that cannot run here stops the run before the journal
    header = {"command": "refocus", "inputs": [journal_key(f) for f in plan.files],
              "refocus_model": model_identity(model), "classifier": model_identity(classifier),
              "scale": scale, "pixel_size_um": pixel_size_um, "not_refocused": not_refocused,
              "objective": dataclasses.asdict(objective) if objective is not None else None,
              "out_dir": str(plan.out_dir.resolve()), "montage_dir": str(plan.montage_dir or "")}

    def measure(todo):
        todo = set(todo)
        files = [f for f in plan.files if journal_key(f) in todo]
        with tqdm(total=len(files), desc="refocus", unit="image", disable=not progress or len(files) < 2) as bar:
            for path in files:
                yield journal_key(path), refocus_entry(path, model, classifier, plan, not_refocused, scale,
                                                       pixel_size_um, objective)
                bar.update(1)

    def write(entries):
        write_csv(plan.csv, REFOCUS_COLUMNS, [entry["record"] for entry in entries])

    return run_journaled(plan.journal, header, header["inputs"], measure, write, resume=resume, on_entry=on_result,
                         on_note=on_note)
