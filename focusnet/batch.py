"""Measuring many images: paths in, one result per image out, and the CSV rows of each.

:func:`predict_paths` is what ``focusnet predict``, the benchmarks and the
tests use; the command line only parses arguments and writes what it yields.
One image that cannot be read or measured becomes a result with a reason,
never the end of the batch.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np

from .contract import IMAGE_COLUMNS
from .errors import FocusnetError, InvalidParameterError
from .figures import is_focusnet_overlay
from .images import find_images, read_image_file
from .inference import FocusPrediction, choose_pixel_size, predict_image
from .loader import load_model


@dataclasses.dataclass
class ImageResult:
    """The outcome for one image of a batch.

    Attributes
    ----------
    path : str
        The image file, as found.
    prediction : FocusPrediction or None
        None when the image could not be measured.
    error : Exception or None
        Why it could not be measured (a :class:`~focusnet.errors.FocusnetError`,
        or an ``OSError`` from reading the file); None when measured.
    image : ndarray or None
        The pixels as read (for overlays); None when reading failed.
    pixel_size_um : float or None
        The pixel size the image was (or would have been) measured at.
    pixel_size_source : str
        ``given``, ``file`` or ``assumed`` ('' when the file could not be read).
    """

    path: str
    prediction: Optional[FocusPrediction]
    error: Optional[Exception] = None
    image: Optional[np.ndarray] = None
    pixel_size_um: Optional[float] = None
    pixel_size_source: str = ""

    @property
    def measured(self) -> bool:
        return self.prediction is not None

    @property
    def reason(self) -> str:
        """Why the image was not measured ('' when it was)."""
        return "" if self.error is None else str(self.error)


def predict_paths(paths, model=None, scale=None, progress: bool = False, pixel_size_um=None,
                  objective=None) -> Iterator[ImageResult]:
    """Measure every image that files, folders and glob patterns name, one at a time.

    The model is loaded and the paths are expanded before this returns, so a
    bad model or a path that matches nothing is raised at once; then each
    image is read and measured as the returned iterator is consumed.

    Parameters
    ----------
    paths : iterable of str or Path
        Image files, folders (their images, not recursive) or glob patterns.
    model : str, Path or loaded model, optional
        Default: the model shipped with focusnet.
    scale : float, optional
        For floating-point images in [0, 1]: the count 1.0 stands for.
    progress : bool
        Show a progress bar (when there are at least two images).
    pixel_size_um : float, optional
        Pixel size in the sample plane of every image (overrides what files
        state); default: what each file states, else the model's (assumed).
    objective : Optics, optional
        The user's objective, for ``defocus_um`` (default: the model's optics).

    Returns
    -------
    iterator of ImageResult
        One per image, in the sorted order :func:`focusnet.images.find_images`
        gives.

    Raises
    ------
    ModelError
        If the model cannot be loaded.
    InputNotFoundError
        If an argument matches no file.
    """
    model = load_model(model)
    files = find_images(paths)
    return _measure_each(files, model, scale, progress, pixel_size_um, objective)


def _measure_each(files, model, scale, progress, pixel_size_um, objective) -> Iterator[ImageResult]:
    from tqdm import tqdm

    for path in tqdm(files, desc="predict", unit="image", disable=not progress or len(files) < 2):
        image, size, source = None, None, ""
        try:
            read = read_image_file(path)
            image = read.pixels
            size, source = choose_pixel_size(model, pixel_size_um, read.pixel_size_um)
            prediction = predict_image(image, model, scale=scale, name=path, pixel_size_um=size,
                                       pixel_size_source=source, objective=objective)
        except (FocusnetError, OSError) as error:
            # One bad file must not stop a batch: the caller records why, and goes on.
            yield ImageResult(path, None, error, image, size, source)
            continue
        yield ImageResult(path, prediction, None, image, size, source)


def format_number(value) -> str:
    """A CSV cell: floats with enough digits that a value read back equals the float32 result."""
    return f"{value:.9g}" if isinstance(value, float) else str(value)


def image_row(result: ImageResult) -> List[str]:
    """The row of :data:`focusnet.contract.IMAGE_COLUMNS` for one image (NaN when not measured).

    An image without content keeps its patch count and a content fraction of 0.
    """
    size = format_number(float(result.pixel_size_um)) if result.pixel_size_um is not None else "nan"
    prediction = result.prediction
    if prediction is None:
        patches = getattr(result.error, "num_patches", 0)
        content = format_number(float(getattr(result.error, "content_fraction", float("nan"))))
        measured = IMAGE_COLUMNS.index("patches") - 1  # level, certainties, probabilities
        return [result.path] + ["nan"] * measured + [str(patches), content, "nan", "nan", size,
                                                     result.pixel_size_source]
    return ([result.path, str(prediction.defocus_level), format_number(prediction.mean_certainty),
             format_number(prediction.aggregate_certainty)]
            + [format_number(float(p)) for p in prediction.distribution]
            + [str(prediction.num_patches), format_number(prediction.content_fraction),
               format_number(float(prediction.defocus_um)), str(int(prediction.defocus_um_lower_bound)), size,
               result.pixel_size_source])


def patch_rows(result: ImageResult) -> Iterator[List[str]]:
    """The rows of :data:`focusnet.contract.PATCH_COLUMNS` for one image (none when not measured).

    Patches without content have ``content`` 0 and NaN level, certainty,
    probabilities and ``defocus_um``.
    """
    if result.prediction is None:
        return
    size = str(result.prediction.patch_size)
    for patch in result.prediction.patch_rows():
        level = "nan" if patch["defocus_level"] is None else str(patch["defocus_level"])
        yield ([result.path] + [str(patch[key]) for key in ("row", "col", "y", "x")] + [level]
               + [format_number(patch["certainty"])] + [format_number(float(p)) for p in patch["probabilities"]]
               + [str(int(patch["content"])), format_number(patch["defocus_um"]), size,
                  str(int(patch["defocus_um_lower_bound"])) if patch["content"] else "nan"])


# --- a batch written to files: safe outputs, committed image by image ---------------------------------------------

#: Overlays are named ``<image stem>`` + this.
OVERLAY_SUFFIX = "_focus.png"


def describe(prediction) -> str:
    """One line about a measured image, as ``focusnet predict`` prints it."""
    bound = ">= " if prediction.defocus_um_lower_bound else ""
    return (f"defocus level {prediction.defocus_level:2d} ({bound}{prediction.defocus_um:.1f} um), aggregate "
            f"certainty {prediction.aggregate_certainty:.2f}, mean certainty {prediction.mean_certainty:.2f}, "
            f"content {prediction.content_fraction:.0%}")


@dataclasses.dataclass
class BatchPlan:
    """What a batch reads and writes, checked before anything is measured (:func:`plan_batch`).

    Attributes
    ----------
    files : list of str
        The images to measure, each once, in order.
    csv, patches_csv : Path
        The tables (``patches_csv`` may be None).
    overlay_dir : Path or None
    notes : list of str
        What was left out and why (duplicates, focusnet's own overlays).
    """

    files: List[str]
    csv: Path
    patches_csv: Optional[Path] = None
    overlay_dir: Optional[Path] = None
    notes: List[str] = dataclasses.field(default_factory=list)

    @property
    def journal(self) -> Path:
        from .journal import journal_path

        return journal_path(self.csv)

    def overlay(self, path) -> Optional[Path]:
        """The overlay file of an image (None without an overlay folder)."""
        return self.overlay_dir / f"{Path(path).stem}{OVERLAY_SUFFIX}" if self.overlay_dir else None


def _check_output_file(path: Path, what: str) -> None:
    folder = path.parent
    if path.is_dir():
        raise InvalidParameterError(f"{what} {path} is a folder; give a file name, e.g. {path / 'focus.csv'}")
    if not folder.exists():
        raise InvalidParameterError(f"{what} {path}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise InvalidParameterError(f"{what} {path}: {folder} is a file, not a folder; choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidParameterError(f"{what} {path}: folder {folder} is not writable; choose a folder you can "
                                    "write to")


def plan_batch(paths, csv, patches_csv=None, overlay_dir=None) -> BatchPlan:
    """Expand the inputs and check every output against them before anything is measured.

    Inputs named twice are measured once; focusnet's own overlays (of an
    earlier run into the input folder, known by their PNG text) are left out.

    Raises
    ------
    InputNotFoundError
        An argument that matches no image.
    InvalidParameterError
        An output that is an input or another output, an overlay that would
        replace an input or another image's overlay, or an output folder
        that is missing, a file, or not writable.
    """
    csv, notes = Path(csv), []
    patches_csv = Path(patches_csv) if patches_csv else None
    overlay_dir = Path(overlay_dir) if overlay_dir else None
    if overlay_dir is not None and overlay_dir.exists() and not overlay_dir.is_dir():
        raise InvalidParameterError(f"--overlay-dir {overlay_dir} is a file, not a folder; choose another path")
    duplicates = []
    files = find_images(paths, duplicates=duplicates)
    if duplicates:
        notes.append(f"{len(duplicates)} image(s) named more than once, measured once: "
                     + ", ".join(duplicates[:3]) + (", ..." if len(duplicates) > 3 else ""))
    ours = [f for f in files if Path(f).name.endswith(OVERLAY_SUFFIX) and is_focusnet_overlay(f)]
    if ours:
        files = [f for f in files if f not in ours]
        notes.append(f"{len(ours)} image(s) are focusnet's own overlays (*{OVERLAY_SUFFIX} of an earlier run): "
                     "left out")
    if not files:
        raise InvalidParameterError("no images left to measure")
    outputs = [("--csv", csv)] + ([("--patches-csv", patches_csv)] if patches_csv else [])
    if patches_csv and csv.resolve() == patches_csv.resolve():
        raise InvalidParameterError(f"--csv and --patches-csv are the same file ({csv}); give two paths")
    inputs = {Path(f).resolve(): f for f in files}
    plan = BatchPlan(files, csv, patches_csv, overlay_dir, notes)
    for flag, path in outputs + [("journal", plan.journal)]:
        if path.resolve() in inputs:
            raise InvalidParameterError(f"{flag} {path} is an input image: refusing to write over it; choose "
                                        "another output path")
    for flag, path in outputs:
        _check_output_file(path, flag)
    if overlay_dir is not None:
        seen = {}
        for f in files:
            overlay = plan.overlay(f).resolve()
            if overlay in inputs:
                raise InvalidParameterError(f"the overlay of {f} would replace the input {inputs[overlay]}; choose "
                                            "another --overlay-dir")
            if overlay in seen:
                raise InvalidParameterError(f"{seen[overlay]} and {f} would share the overlay {plan.overlay(f)}; "
                                            "measure them in separate runs or rename one")
            seen[overlay] = f
        if overlay_dir.exists() and not os.access(overlay_dir, os.W_OK | os.X_OK):
            raise InvalidParameterError(f"--overlay-dir {overlay_dir} is not writable; choose a folder you can "
                                        "write to")
    return plan


def measure_entry(path, model, overlay=None, scale=None, pixel_size_um=None, objective=None,
                  patches: bool = False) -> dict:
    """Measure one image and draw its overlay: the journal entry of a batch (what a Dask worker returns).

    Parameters
    ----------
    path : str
    model : loaded model, or its folder or bundle path (loaded once per process)
    overlay : path-like, optional
        Where to write the overlay (whole: temporary file renamed into place).

    Returns
    -------
    dict
        ``image``, ``row`` (:data:`~focusnet.contract.IMAGE_COLUMNS`), ``patches`` (rows, if
        asked for), ``summary`` (None when not measured), ``warning`` (why not) and ``notes``.
    """
    from .figures import save_overlay
    from .files import replacing

    (result,) = _measure_each([path], load_model(model), scale, False, pixel_size_um, objective)
    prediction = result.prediction
    notes = list(prediction.notes) if prediction is not None else []
    if prediction is not None and overlay is not None:
        with replacing(overlay) as temporary:
            note = save_overlay(temporary, result.image, prediction,
                                title=f"{Path(result.path).name}: level {prediction.defocus_level}, "
                                      f"aggregate certainty {prediction.aggregate_certainty:.2f}")
        notes += [f"{result.path}: {note}"] if note else []
    return {"image": result.path, "row": image_row(result), "patches": list(patch_rows(result)) if patches else [],
            "summary": describe(prediction) if prediction is not None else None,
            "warning": None if prediction is not None else result.reason, "notes": notes}


def _entries(files, plan, model, options, progress, workers, scheduler):
    """Each file's entry as it is finished: here, one at a time, or on a Dask cluster."""
    from tqdm import tqdm

    bar = tqdm(total=len(files), desc="predict", unit="image", disable=not progress or len(files) < 2)
    try:
        if workers is None and scheduler is None:
            for path in files:
                yield measure_entry(path, model, plan.overlay(path), **options)
                bar.update(1)
            return
        from .cluster import measure_on_cluster

        for entry in measure_on_cluster(measure_entry, files, plan, model, options, workers, scheduler):
            yield entry
            bar.update(1)
    finally:
        bar.close()


def run_batch(plan: BatchPlan, model, scale=None, pixel_size_um=None, objective=None, resume: bool = False,
              progress: bool = False, on_result=None, workers: int | None = None,
              scheduler: str | None = None) -> dict:
    """Measure a planned batch, committing each image to the journal, then write the tables.

    Each image's rows are in the journal (``<csv>.journal``, see
    :mod:`focusnet.journal`) before the next image starts. The tables are
    written from the journal at the end, whole and in input order, and the
    journal is removed. Interrupted (a signal, a crash, a full disk), the
    journal keeps every image measured so far; ``resume=True`` measures only
    the rest and ends with the same tables, byte for byte.

    Parameters
    ----------
    plan : BatchPlan
    model : loaded model
    on_result : callable, optional
        Called with each entry (see :func:`measure_entry`) as it is committed.
    workers : int, optional
        Measure on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Measure on the running ``dask.distributed`` scheduler at this address
        (its workers must see the images, the model and the overlay folder at
        the same paths). Either way the tables are those of a run here.

    Returns
    -------
    dict
        The journal's entries by image (``row``, ``patches``, ``summary``,
        ``warning``), in input order.
    """
    import csv
    import hashlib
    import json

    from .contract import PATCH_COLUMNS
    from .files import replacing
    from .journal import Journal

    if workers is not None or scheduler is not None:
        from .cluster import check_cluster

        check_cluster(workers, scheduler)  # before the journal: a refused run leaves nothing behind
    config = json.dumps(model.config, sort_keys=True).encode()
    header = {"command": "predict", "inputs": [str(Path(f).resolve()) for f in plan.files],
              "model": hashlib.sha256(config).hexdigest(), "scale": scale, "pixel_size_um": pixel_size_um,
              "objective": dataclasses.asdict(objective) if objective is not None else None,
              "patches_csv": plan.patches_csv is not None, "overlay_dir": str(plan.overlay_dir or "")}
    try:
        journal = Journal.resume(plan.journal, header) if resume else Journal.start(plan.journal, header)
    except OSError as error:
        raise InvalidParameterError(f"cannot write {plan.journal} ({error.strerror or error}); choose a folder you "
                                    "can write to") from None
    with journal:
        todo = [f for f in plan.files if str(Path(f).resolve()) not in journal.entries]
        if plan.overlay_dir is not None:
            plan.overlay_dir.mkdir(parents=True, exist_ok=True)
        options = {"scale": scale, "pixel_size_um": pixel_size_um, "objective": objective,
                   "patches": plan.patches_csv is not None}
        for entry in _entries(todo, plan, model, options, progress, workers, scheduler):
            journal.record(str(Path(entry["image"]).resolve()), **entry)
            if on_result is not None:
                on_result(entry)
        entries = [journal.entries[str(Path(f).resolve())] for f in plan.files]
        tables = [(plan.csv, IMAGE_COLUMNS, [[entry["row"]] for entry in entries])]
        if plan.patches_csv:
            tables.append((plan.patches_csv, PATCH_COLUMNS, [entry["patches"] for entry in entries]))
        for path, columns, rows in tables:
            with replacing(path) as temporary, open(temporary, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                for image_rows in rows:
                    writer.writerows(image_rows)
    journal.remove()
    return {entry["image"]: entry for entry in entries}
