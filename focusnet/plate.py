"""A whole plate's focus at a glance: plate maps, the most defocused images, and a summary.

:func:`read_results` reads focusnet's ``predict`` CSV or CellProfiler's
``Image.csv`` (``ImageFocus_*`` columns of the MeasureImageFocus module) into
one :class:`SiteResult` per image, with its well and site taken from metadata
columns (``Metadata_Well``, ``Metadata_Site``/``Metadata_Field``) or, failing
those, from the file name (:func:`well_and_site`). :func:`summarise_wells`
gives each well its worst site's level, mean level and mean certainty, and
:func:`save_plate_map` draws them on a 96-, 384- or 1536-well plate, chosen
from the wells present.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import List, Optional

import numpy as np

from .contract import FEATURE_AGGREGATE_CERTAINTY, FEATURE_DEFOCUS_LEVEL, LEVELS, MEASUREMENT_CATEGORY
from .errors import InvalidParameterError

__all__ = ["PLATE_FORMATS", "SiteResult", "WellSummary", "plate_format", "read_results", "save_plate_map",
           "summarise_wells", "summary_text", "well_and_site", "well_position"]

#: Plate formats: wells -> (rows, columns).
PLATE_FORMATS = {96: (8, 12), 384: (16, 24), 1536: (32, 48)}
#: A well is flagged when any of its sites reads at least this level (the QC pipeline flags > 2).
DEFOCUSED_LEVEL = 3

# File-name conventions, tried in turn. Each gives a row (letters or a number), a column and
# perhaps a site. Separators around a well keep "a01" out of words such as "data01".
_SEPARATOR = r"(?:^|(?<=[_\-\s.]))"
_END = r"(?=[_\-\s.]|$)"
FILE_NAME_PATTERNS = (
    # Opera/Operetta (Harmony): r01c01f01p01-ch1...
    re.compile(r"r(?P<row>\d{1,2})c(?P<col>\d{1,2})f(?P<site>\d{1,4})", re.IGNORECASE),
    # MetaXpress and BBBC style: ..._A01_s1_w1..., ...__a01__s1__w1...
    re.compile(_SEPARATOR + r"(?P<row>[A-Za-z]{1,2})(?P<col>\d{1,2})_{1,2}s(?P<site>\d{1,4})" + _END),
    # A well alone (two-digit column), site perhaps elsewhere as s1 or f01: A01, a01, plate1_B03.tif
    re.compile(_SEPARATOR + r"(?P<row>[A-Za-z]{1,2})(?P<col>\d{2})" + _END),
)
#: Lower-case letters that name other dimensions (t01, z05, c01, w1, s1, f01, p01), not rows.
_DIMENSION_PREFIXES = set("tzcwsfp")
_SITE_ELSEWHERE = re.compile(_SEPARATOR + r"[sf](?P<site>\d{1,4})" + _END, re.IGNORECASE)


@dataclasses.dataclass
class SiteResult:
    """One image of the plate: where it is and what focusnet said of it."""

    image: str
    well: str
    row: int
    col: int
    site: str
    defocus_level: float
    aggregate_certainty: float
    path: Optional[str] = None


@dataclasses.dataclass
class WellSummary:
    """One well: its sites' worst and mean level, and their mean certainty (NaN where none was measured)."""

    well: str
    row: int
    col: int
    sites: int
    measured: int
    worst_level: float
    mean_level: float
    mean_certainty: float


def _row_number(letters: str) -> int:
    """A=1 ... Z=26, AA=27 ... AF=32 (1536-well plates)."""
    letters = letters.upper()
    if len(letters) == 1:
        return ord(letters) - ord("A") + 1
    return 26 + ord(letters[1]) - ord("A") + 1 if letters[0] == "A" else 0


def row_letters(row: int) -> str:
    """The inverse of the row numbering: 1 -> A, 27 -> AA."""
    return chr(ord("A") + row - 1) if row <= 26 else "A" + chr(ord("A") + row - 27)


def well_position(well: str) -> tuple:
    """(row, column), 1-based, of a well name such as ``A01``, ``b3`` or ``AF48``.

    Raises
    ------
    InvalidParameterError
        For a name that is not a letter-row, number-column well.
    """
    match = re.fullmatch(r"\s*([A-Za-z]{1,2})0*(\d{1,2})\s*", str(well))
    row = _row_number(match.group(1)) if match else 0
    if not match or not 1 <= row <= 32 or not 1 <= int(match.group(2)) <= 48:
        raise InvalidParameterError(f"{well!r} is not a well name (a row letter A-AF and a column 1-48, e.g. B07)")
    return row, int(match.group(2))


def well_name(row: int, col: int) -> str:
    """``A01`` style."""
    return f"{row_letters(row)}{col:02d}"


def well_and_site(name: str, pattern: re.Pattern | None = None) -> Optional[tuple]:
    """The (row, column, site) a file name states, or None.

    Parameters
    ----------
    name : str
        A file name or path (only its last part is read).
    pattern : re.Pattern, optional
        A user's regular expression with named groups: ``well`` (e.g. B07),
        or ``row`` (letters or number) and ``col``; ``site`` if the name has
        one. Default: the conventions of :data:`FILE_NAME_PATTERNS`.
    """
    stem = Path(str(name)).name
    for candidate in ([pattern] if pattern is not None else FILE_NAME_PATTERNS):
        matches = candidate.finditer(stem)
        if candidate is FILE_NAME_PATTERNS[-1]:  # a bare well: t01 or c01 is more likely another dimension
            matches = (m for m in matches if m.groupdict().get("row") not in _DIMENSION_PREFIXES)
        match = next(matches, None)
        if not match:
            continue
        groups = match.groupdict()
        try:
            if groups.get("well"):
                row, col = well_position(groups["well"])
            else:
                letters_or_number = groups["row"]
                row = int(letters_or_number) if letters_or_number.isdigit() else _row_number(letters_or_number)
                col = int(groups["col"])
        except (KeyError, TypeError, ValueError, InvalidParameterError):
            continue
        if not (1 <= row <= 32 and 1 <= col <= 48):
            continue
        site = groups.get("site")
        if site is None and pattern is None:
            elsewhere = _SITE_ELSEWHERE.search(stem[match.end():])
            site = elsewhere.group("site") if elsewhere else None
        return row, col, str(int(site)) if site and site.isdigit() else (site or "1")
    return None


def _number(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _cellprofiler_image_name(columns, image_name: str | None) -> str:
    prefix = f"{MEASUREMENT_CATEGORY}_{FEATURE_DEFOCUS_LEVEL}_"
    names = [column[len(prefix):] for column in columns if column.startswith(prefix)]
    if image_name is not None:
        if image_name not in names:
            raise InvalidParameterError(f"no {prefix}{image_name} column; the table measures {names or 'no image'}")
        return image_name
    if not names:
        raise InvalidParameterError("neither a focusnet predict CSV (image, defocus_level, aggregate_certainty) nor a "
                                    f"CellProfiler table with {prefix}<image> columns")
    return names[0]


def _checked(row_name: str, what: str, value: float, valid, allowed: str, notes) -> float:
    if math.isnan(value) or valid(value):
        return value
    if notes is not None:
        notes.append(f"{row_name}: {what} {value:g} is not {allowed}: counted as not measured")
    return math.nan


def read_results(path, pattern: str | None = None, image_name: str | None = None,
                 notes: list | None = None) -> List[SiteResult]:
    """One :class:`SiteResult` per row of focusnet's predict CSV or CellProfiler's ``Image.csv``.

    Parameters
    ----------
    path : path-like
    pattern : str, optional
        A regular expression for file names (see :func:`well_and_site`).
    image_name : str, optional
        For CellProfiler tables measuring several images: which (default: the first).
    notes : list, optional
        Receives a warning naming each image whose level is not one of 0-10 or whose certainty
        is outside 0-1; such an image counts as not measured.

    Raises
    ------
    InvalidParameterError
        A file that is not a CSV table (:func:`focusnet.files.read_csv_rows`), an unknown table,
        a bad pattern, rows whose well cannot be found (the message names the first few and
        suggests a file-name pattern), or two rows for one site (a table holding a run twice).
    """
    from .files import read_csv_rows

    compiled = None
    if pattern is not None:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise InvalidParameterError(f"the file-name pattern {pattern!r} is not a regular expression: {error}",
                                        setting="pattern") from None
        if not ({"well"} <= set(compiled.groupindex) or {"row", "col"} <= set(compiled.groupindex)):
            raise InvalidParameterError(f"the file-name pattern {pattern!r} needs named groups (?P<well>...) or "
                                        "(?P<row>...) and (?P<col>...), and (?P<site>...) if names have sites",
                                        setting="pattern")
    rows = read_csv_rows(path)
    columns = list(rows[0]) if rows else []
    if not rows:
        raise InvalidParameterError(f"{path}: no rows")
    if {"image", "defocus_level", "aggregate_certainty"} <= set(columns):
        level_column, certainty_column, name_column, folder_column = ("defocus_level", "aggregate_certainty",
                                                                      "image", None)
    else:
        name = _cellprofiler_image_name(columns, image_name)
        level_column = f"{MEASUREMENT_CATEGORY}_{FEATURE_DEFOCUS_LEVEL}_{name}"
        certainty_column = f"{MEASUREMENT_CATEGORY}_{FEATURE_AGGREGATE_CERTAINTY}_{name}"
        name_column, folder_column = f"FileName_{name}", f"PathName_{name}"
    results, unplaced, seen = [], [], {}
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        file_name = row.get(name_column) or ""
        folder = row.get(folder_column) if folder_column else None
        image_path = str(Path(folder) / file_name) if folder else file_name
        position = None
        if row.get("Metadata_Well") and pattern is None:
            try:
                position = well_position(row["Metadata_Well"]) + (
                    row.get("Metadata_Site") or row.get("Metadata_Field") or "1",)
            except InvalidParameterError:
                position = None
        position = position or well_and_site(file_name, compiled)
        if position is None:
            unplaced.append(file_name or "(no file name)")
            continue
        plate_row, plate_col, site = position
        well = well_name(plate_row, plate_col)
        if (well, site) in seen:
            line, other = seen[well, site]
            if other == file_name:
                raise InvalidParameterError(f"{path}: lines {line} and {number} both hold {file_name}: a table "
                                            "holding a run twice? Keep one row per image")
            raise InvalidParameterError(
                f"{path}: lines {line} and {number} put {other} and {file_name} at one site (well {well}, site "
                f"{site}): images of two plates? Map one plate at a time, or give a file-name pattern",
                setting="pattern")
        seen[well, site] = (number, file_name)
        level = _checked(file_name, "level", _number(row.get(level_column)),
                         lambda value: value in LEVELS, f"a level ({LEVELS[0]}-{LEVELS[-1]})", notes)
        certainty = _checked(file_name, "certainty", _number(row.get(certainty_column)),
                             lambda value: 0 <= value <= 1, "a certainty (0-1)", notes)
        if math.isnan(level):
            certainty = math.nan
        results.append(SiteResult(Path(file_name).name, well, plate_row, plate_col, site, level, certainty,
                                  image_path or None))
    if unplaced:
        raise InvalidParameterError(
            f"{path}: no well found for {len(unplaced)} of {len(rows)} images (e.g. {', '.join(unplaced[:3])}); "
            "give Metadata_Well columns or a file-name pattern with named groups, e.g. "
            r"'(?P<well>[A-P]\d\d)_site(?P<site>\d+)'", setting="pattern")
    return results


def plate_format(results) -> int:
    """The smallest of 96, 384 and 1536 wells that holds every well present.

    Raises
    ------
    InvalidParameterError
        For a well beyond row AF or column 48.
    """
    rows = max(result.row for result in results)
    cols = max(result.col for result in results)
    for wells, (plate_rows, plate_cols) in PLATE_FORMATS.items():
        if rows <= plate_rows and cols <= plate_cols:
            return wells
    raise InvalidParameterError(f"well {well_name(rows, cols)} does not fit a 1536-well plate")


def summarise_wells(results) -> List[WellSummary]:
    """One summary per well present, in plate order (row, then column)."""
    wells = {}
    for result in results:
        wells.setdefault((result.row, result.col), []).append(result)
    summaries = []
    for (row, col), sites in sorted(wells.items()):
        levels = np.array([site.defocus_level for site in sites], dtype=float)
        certainty = np.array([site.aggregate_certainty for site in sites], dtype=float)
        measured = np.isfinite(levels)
        known = measured & np.isfinite(certainty)
        summaries.append(WellSummary(
            well_name(row, col), row, col, len(sites), int(measured.sum()),
            float(levels[measured].max()) if measured.any() else math.nan,
            float(levels[measured].mean()) if measured.any() else math.nan,
            float(certainty[known].mean()) if known.any() else math.nan))
    return summaries


def most_defocused(results, count: int, min_level: int = DEFOCUSED_LEVEL) -> list:
    """Up to ``count`` sites at ``min_level`` or above, the highest levels first (ties: the more certain)."""
    measured = [result for result in results if result.defocus_level >= min_level]
    return sorted(measured, key=lambda r: (-r.defocus_level, -np.nan_to_num(r.aggregate_certainty)))[:count]


def summary_text(results, summaries, wells: int) -> str:
    """Counts per level, unmeasured images, and wells with any site at level >= 3."""
    levels = [result.defocus_level for result in results]
    lines = [f"{len(results)} images in {len(summaries)} wells of a {wells}-well plate", "", "images per level:"]
    for level in LEVELS:
        lines.append(f"  level {level:2d}: {sum(value == level for value in levels)}")
    not_measured = sum(not math.isfinite(value) for value in levels)
    lines.append(f"  not measured (no content, too small, unreadable): {not_measured}")
    flagged = [summary for summary in summaries if summary.worst_level >= DEFOCUSED_LEVEL]
    lines += ["", f"wells with any site at level >= {DEFOCUSED_LEVEL}: {len(flagged)}"]
    lines += [f"  {summary.well}: worst level {summary.worst_level:g}, mean {summary.mean_level:.1f}, "
              f"{summary.measured} of {summary.sites} sites measured" for summary in flagged]
    return "\n".join(lines) + "\n"


def write_wells_csv(summaries, path) -> Path:
    """One row per well (:data:`~focusnet.contract.WELL_COLUMNS`), written whole."""
    from .contract import WELL_COLUMNS
    from .records import well_record, write_csv

    return write_csv(path, WELL_COLUMNS, [well_record(summary) for summary in summaries])


def save_plate_map(summaries, wells: int, path, title: str = "") -> Path:
    """Three plate maps side by side: worst site's level, mean level, mean aggregate certainty.

    Wells not imaged are blank; imaged wells with no measured site are grey
    with a cross.
    """
    from .figures import pyplot
    from .files import replacing

    plt = pyplot()
    plate_rows, plate_cols = PLATE_FORMATS[wells]
    panels = [("worst site's defocus level", "worst_level", "viridis_r", (0, LEVELS[-1])),
              ("mean defocus level", "mean_level", "viridis_r", (0, LEVELS[-1])),
              ("mean aggregate certainty", "mean_certainty", "magma", (0, 1))]
    width = {96: 5.2, 384: 7.0, 1536: 9.5}[wells]
    figure, axes = plt.subplots(len(panels), 1, figsize=(width + 1.2, 3 * width * plate_rows / plate_cols + 1.6))
    label_size = {96: 8, 384: 6, 1536: 4}[wells]
    for axis, (label, field, colour_map, limits) in zip(axes, panels):
        grid = np.full((plate_rows, plate_cols), np.nan)
        imaged = np.zeros((plate_rows, plate_cols), bool)
        for summary in summaries:
            grid[summary.row - 1, summary.col - 1] = getattr(summary, field)
            imaged[summary.row - 1, summary.col - 1] = True
        colours = plt.get_cmap(colour_map).with_extremes(bad="white")
        image = axis.imshow(np.ma.masked_invalid(grid), cmap=colours, vmin=limits[0], vmax=limits[1],
                            interpolation="nearest")
        unmeasured = np.argwhere(imaged & ~np.isfinite(grid))
        if len(unmeasured):
            axis.scatter(unmeasured[:, 1], unmeasured[:, 0], marker="x", color="grey", s=12 * 96 / wells ** 0.5,
                         label="imaged, not measured")
            axis.legend(fontsize=6, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
        axis.set_xticks(range(plate_cols))
        axis.set_xticklabels([str(col) for col in range(1, plate_cols + 1)], fontsize=label_size)
        axis.set_yticks(range(plate_rows))
        axis.set_yticklabels([row_letters(row) for row in range(1, plate_rows + 1)], fontsize=label_size)
        axis.tick_params(length=0)
        axis.set_xticks(np.arange(-0.5, plate_cols), minor=True)
        axis.set_yticks(np.arange(-0.5, plate_rows), minor=True)
        axis.grid(which="minor", color="#dddddd", lw=0.4)
        axis.tick_params(which="minor", length=0)
        axis.set_title(label, fontsize=9, loc="left")
        bar = figure.colorbar(image, ax=axis, fraction=0.03, pad=0.02)
        bar.ax.tick_params(labelsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with replacing(path) as temporary:
        figure.savefig(temporary, dpi=130)
    plt.close(figure)
    return Path(path)


def save_defocused_montage(sites, path, model=None, columns: int = 4) -> tuple:
    """Overlays of the given sites' images, measured again with ``model``, as one montage.

    Returns
    -------
    (Path or None, list of str)
        The montage (None when no image could be read) and a note per image left out.
    """
    from .errors import FocusnetError
    from .figures import overlay_rgb, save_montage
    from .files import replacing
    from .images import read_image_file
    from .inference import choose_pixel_size, predict_image
    from .loader import load_model

    model = load_model(model)
    overlays, titles, notes = [], [], []
    for site in sites:
        try:
            read = read_image_file(site.path)
            size, source = choose_pixel_size(model, None, read.pixel_size_um)
            prediction = predict_image(read.pixels, model, name=site.path, pixel_size_um=size,
                                       pixel_size_source=source)
        except (FocusnetError, OSError) as error:
            notes.append(f"{site.image}: left out of the montage ({error})")
            continue
        overlays.append(overlay_rgb(read.pixels, prediction))
        titles.append(f"{site.well} site {site.site}: level {site.defocus_level:g}, "
                      f"certainty {site.aggregate_certainty:.2f}")
    if not overlays:
        return None, notes
    with replacing(path) as temporary:
        save_montage(overlays, titles, temporary, suptitle="most defocused images (patch borders: level by hue, "
                     "pale = uncertain)", columns=columns)
    return Path(path), notes
