"""Measuring many images: paths in, one result per image out, and the CSV rows of each.

:func:`predict_paths` is what ``focusnet predict``, the benchmarks and the
tests use; the command line only parses arguments and writes what it yields.
One image that cannot be read or measured becomes a result with a reason,
never the end of the batch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np

from .errors import FocusnetError, InvalidParameterError
from .figures import is_focusnet_overlay
from .files import check_output_file, check_output_folder
from .images import find_images, read_image_file
from .inference import FocusPrediction, choose_pixel_size, predict_image
from .loader import load_model
from .records import image_record, patch_records


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

    def record(self) -> dict:
        """The image's record: its row of :data:`~focusnet.contract.IMAGE_COLUMNS` (see :mod:`focusnet.records`)."""
        return image_record(self.path, self.prediction, self.error, self.pixel_size_um, self.pixel_size_source)


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
    if overlay_dir is not None:
        check_output_folder(overlay_dir, "overlay_dir")
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
    outputs = [("csv", csv)] + ([("patches_csv", patches_csv)] if patches_csv else [])
    if patches_csv and csv.resolve() == patches_csv.resolve():
        raise InvalidParameterError(f"the image and patch tables are the same file ({csv}); give two paths",
                                    setting="patches_csv")
    inputs = {Path(f).resolve(): f for f in files}
    plan = BatchPlan(files, csv, patches_csv, overlay_dir, notes)
    for setting, path in outputs + [("csv", plan.journal)]:
        if path.resolve() in inputs:
            raise InvalidParameterError(f"{path} is an input image: refusing to write over it; choose another "
                                        "output path", setting=setting)
    for setting, path in outputs:
        check_output_file(path, setting)
    if overlay_dir is not None:
        seen = {}
        for f in files:
            overlay = plan.overlay(f).resolve()
            if overlay in inputs:
                raise InvalidParameterError(f"the overlay of {f} would replace the input {inputs[overlay]}; choose "
                                            "another overlay folder", setting="overlay_dir")
            if overlay in seen:
                raise InvalidParameterError(f"{seen[overlay]} and {f} would share the overlay {plan.overlay(f)}; "
                                            "measure them in separate runs or rename one", setting="overlay_dir")
            seen[overlay] = f
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
        ``image``, ``record`` (see :func:`focusnet.records.image_record`), ``patches`` (patch
        records, if asked for), ``summary`` (None when not measured), ``warning`` (why not) and ``notes``.
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
    return {"image": result.path, "record": result.record(),
            "patches": list(patch_records(result.path, prediction)) if patches and prediction is not None else [],
            "summary": describe(prediction) if prediction is not None else None,
            "warning": None if prediction is not None else result.reason, "notes": notes}


def _entries(files, plan, model, options, progress, workers, scheduler):
    """``(key, entry)`` of each file as it is finished: here, one at a time, or on a Dask cluster."""
    from tqdm import tqdm

    bar = tqdm(total=len(files), desc="predict", unit="image", disable=not progress or len(files) < 2)
    try:
        if workers is None and scheduler is None:
            entries = (measure_entry(path, model, plan.overlay(path), **options) for path in files)
        else:
            from .cluster import measure_on_cluster

            entries = measure_on_cluster(measure_entry, files, plan.overlay, model, options, workers, scheduler)
        for entry in entries:
            yield journal_key(entry["image"]), entry
            bar.update(1)
    finally:
        bar.close()


def journal_key(path) -> str:
    """What identifies an input in a journal: its absolute path."""
    return str(Path(path).resolve())


def model_identity(model) -> str:
    """What a journal records to refuse resuming with another model: a SHA-256 of all that makes its answers.

    A model folder's config holds its weights' SHA-256; a bundle's and an ONNX model's manifest hold the
    hashes of their graphs and files, so a changed graph is another model even under the same config.
    """
    import hashlib
    import json

    parts = {"config": model.config, "manifest": getattr(model, "manifest", None)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def run_batch(plan: BatchPlan, model, scale=None, pixel_size_um=None, objective=None, resume: bool = False,
              progress: bool = False, on_result=None, workers: int | None = None,
              scheduler: str | None = None, on_note=None) -> dict:
    """Measure a planned batch, committing each image to the journal, then write the tables.

    Each image's records are in the journal (``<csv>.journal``, see
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
    on_note : callable, optional
        Called with a message for each image a resumed run measures again (see
        :func:`focusnet.journal.run_journaled`).

    Returns
    -------
    dict
        The journal's entries by image (``record``, ``patches``, ``summary``,
        ``warning``), in input order.
    """
    from .contract import IMAGE_COLUMNS, PATCH_COLUMNS
    from .journal import run_journaled
    from .records import write_csv

    if workers is not None or scheduler is not None:
        from .cluster import check_cluster

        check_cluster(workers, scheduler)  # before the journal: a refused run leaves nothing behind
    else:
        model.prepare()  # a model that cannot run here (no TensorFlow, say) stops the run before the journal
    header = {"command": "predict", "inputs": [journal_key(f) for f in plan.files], "model": model_identity(model),
              "scale": scale, "pixel_size_um": pixel_size_um,
              "objective": dataclasses.asdict(objective) if objective is not None else None,
              "patches_csv": plan.patches_csv is not None, "overlay_dir": str(plan.overlay_dir or ""),
              # The records' columns: a journal of a focusnet whose tables had others is refused, not half-used.
              "columns": [IMAGE_COLUMNS, PATCH_COLUMNS]}
    options = {"scale": scale, "pixel_size_um": pixel_size_um, "objective": objective,
               "patches": plan.patches_csv is not None}

    def measure(todo):
        if plan.overlay_dir is not None:
            plan.overlay_dir.mkdir(parents=True, exist_ok=True)
        todo = set(todo)
        files = [f for f in plan.files if journal_key(f) in todo]
        return _entries(files, plan, model, options, progress, workers, scheduler)

    def write(entries):
        write_csv(plan.csv, IMAGE_COLUMNS, [entry["record"] for entry in entries])
        if plan.patches_csv:
            write_csv(plan.patches_csv, PATCH_COLUMNS, [patch for entry in entries for patch in entry["patches"]])

    entries = run_journaled(plan.journal, header, header["inputs"], measure, write, resume=resume,
                            on_entry=on_result, on_note=on_note)
    return {entry["image"]: entry for entry in entries}
