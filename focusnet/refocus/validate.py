"""Measuring a refocus model: on simulated defocus of held-out images and on real through-focus stacks.

Every comparison is made after a least-squares intensity match of each
result to its reference (``a * result + b``; restoration is judged by
structure, not by an intensity scale), with PSNR over the reference's range
and SSIM (scikit-image). Beside the network, in the same run:
Richardson-Lucy deconvolution (scikit-image, :data:`RL_ITERATIONS`
iterations) with focusnet's own PSF, once with the true distance from focus
(an oracle no user has) and once with the distance the classifier estimates
(what a user could do).

Objects are counted by a fixed segmentation (:func:`count_objects`): Gaussian
smoothing (sigma 1 px), Otsu's threshold, connected components of at least
:data:`MIN_OBJECT_AREA_UM2` square micrometres.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np

from ..optics import Optics, psf_kernels
from .restore import refocus_image, refusal

RL_ITERATIONS = 30
MIN_OBJECT_AREA_UM2 = 4.0
METHODS = ("unrestored", "refocused", "rl_true_distance", "rl_estimated_distance")


def matched(result: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``a * result + b`` with ``a``, ``b`` the least-squares fit to the reference."""
    design = np.stack([result.ravel(), np.ones(result.size)], axis=1).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(design, reference.ravel().astype(np.float64), rcond=None)
    return a * result.astype(np.float64) + b


def quality(result: np.ndarray, reference: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of an intensity-matched result against its reference."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    reference = reference.astype(np.float64)
    fitted = matched(result, reference)
    data_range = float(reference.max() - reference.min()) or 1.0
    return {"psnr": float(peak_signal_noise_ratio(reference, fitted, data_range=data_range)),
            "ssim": float(structural_similarity(reference, fitted, data_range=data_range))}


def richardson_lucy(counts: np.ndarray, defocus_um: float, optics: Optics, dark: float) -> np.ndarray:
    """Richardson-Lucy deconvolution (scikit-image) with focusnet's PSF at ``defocus_um`` from focus."""
    from skimage.restoration import richardson_lucy as deconvolve

    if defocus_um > 1e-6:
        psf = psf_kernels((1,), dataclasses.replace(optics, z_step_um=float(defocus_um))).kernels[0]
    else:
        psf = psf_kernels((0,), optics).kernels[0]
    signal = np.maximum(counts.astype(np.float64) - dark, 0)
    peak = float(signal.max()) or 1.0
    # The iteration count's name changed in scikit-image 0.19 (iterations -> num_iter).
    name = "num_iter" if "num_iter" in inspect.signature(deconvolve).parameters else "iterations"
    pad = psf.shape[0] // 2
    padded = np.pad(signal / peak, pad, mode="reflect")
    result = deconvolve(padded, psf, clip=False, **{name: RL_ITERATIONS})[pad:-pad, pad:-pad]
    return result * peak + dark


def count_objects(counts: np.ndarray, pixel_size_um: float) -> int:
    """Objects found by the fixed segmentation (see the module's description)."""
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import label
    from skimage.morphology import remove_small_objects

    smooth = gaussian(counts.astype(np.float64), sigma=1, preserve_range=True)
    mask = smooth > threshold_otsu(smooth)
    min_size = max(int(round(MIN_OBJECT_AREA_UM2 / pixel_size_um ** 2)), 1)
    return int(label(remove_small_objects(mask, min_size=min_size)).max())


def compare_methods(defocused: np.ndarray, reference: np.ndarray, refocused: np.ndarray, optics: Optics,
                    true_um: float, estimated_um: float, dark: float) -> dict:
    """Quality (:func:`quality`) of each method (:data:`METHODS`) on one defocused image against its reference."""
    results = {
        "unrestored": defocused.astype(np.float64),
        "refocused": refocused.astype(np.float64),
        "rl_true_distance": richardson_lucy(defocused, true_um, optics, dark),
        "rl_estimated_distance": richardson_lucy(defocused, estimated_um, optics, dark),
    }
    return {method: quality(image, reference) for method, image in results.items()}


def object_counts(reference_count: int, defocused, refocused, pixel_size_um: float) -> dict:
    """A row's object counts: its reference's (counted once by the caller), the input's and the result's."""
    return {"best_plane": reference_count, "unrestored": count_objects(defocused, pixel_size_um),
            "refocused": count_objects(refocused, pixel_size_um)}


def summarise(rows) -> dict:
    """Mean PSNR and SSIM of each method, and the network's gain, overall and per level."""
    summary = {}
    for method in METHODS:
        summary[method] = {"psnr": float(np.mean([r[method]["psnr"] for r in rows])),
                           "ssim": float(np.mean([r[method]["ssim"] for r in rows]))}
    for row in rows:
        row["gain_db"] = row["refocused"]["psnr"] - row["unrestored"]["psnr"]
    summary["gain_db"] = float(np.mean([r["gain_db"] for r in rows]))
    summary["worst_gain_db"] = float(np.min([r["gain_db"] for r in rows]))
    after = [r["level_after"] for r in rows if r.get("level_after") is not None]
    if all("objects" in r for r in rows):
        for method in ("unrestored", "refocused"):
            summary[f"object_count_error_{method}"] = float(np.mean([
                abs(r["objects"][method] - r["objects"]["best_plane"]) / max(r["objects"]["best_plane"], 1)
                for r in rows]))
    summary.update(count=len(rows), mean_level_before=float(np.mean([r["level_before"] for r in rows])),
                   mean_level_after=float(np.mean(after)) if after else None,
                   lower_level_after=sum(r.get("level_after") is not None and r["level_after"] < r["level_before"]
                                         for r in rows))
    return summary


def evaluate_synthetic(paths, model=None, classifier=None, levels=None, seed: int = 0, progress: bool = False) -> dict:
    """The refocus model on simulated defocus of in-focus images it was not trained on.

    Each image is defocused by the model's own simulator optics to every
    level, through the camera as imaged and each of the classifier's camera
    variants (:data:`focusnet.simulate.CAMERA_VARIANTS`, Poisson noise on);
    the reference is the in-focus image through the same camera without
    noise. The classifier's estimate of the distance drives one of the two
    Richardson-Lucy runs.

    Returns
    -------
    dict
        ``rows`` (one per image, level and camera) and ``summary`` (overall and ``by_level``).
    """
    from tqdm import tqdm

    from ..images import read_image
    from ..loader import load_model
    from ..simulate import AS_IMAGED, CAMERA_VARIANTS, blur_levels
    from .model import load_refocus_model

    model, classifier = load_refocus_model(model), load_model(classifier)
    optics = model.optics
    levels = list(levels or range(1, model.config["max_level"] + 1))
    rng = np.random.default_rng(seed)
    rows = []
    cameras = (AS_IMAGED, *CAMERA_VARIANTS)
    bar = tqdm(total=len(paths) * len(cameras), disable=not progress, unit="image")
    for path in paths:
        # Blurred once per image; each camera then records the same blur with its own noise.
        counts = read_image(path).astype(np.float64)
        dark = float(counts.min())
        blurred = blur_levels(counts, [0, *levels], optics)
        for camera in cameras:
            reference = np.maximum(blurred[0] - dark, 0) * camera.gain + dark + camera.added_offset
            reference_objects = count_objects(reference, optics.pixel_size_um)
            for level, clean in zip(levels, blurred[1:]):
                defocused = camera.apply(clean, dark, rng)
                result = refocus_image(defocused, model, classifier, pixel_size_um=optics.pixel_size_um,
                                       pixel_size_source="given", force=True)
                if result.before is None:  # no content: nothing a user would get refocused
                    continue
                qualities = compare_methods(defocused, reference, result.image, optics,
                                            float(optics.defocus_um(level)), float(result.before.defocus_um),
                                            dark + camera.added_offset)
                rows.append({"image": str(path), "camera": camera.name, "level": level,
                             "level_before": result.before.defocus_level,
                             "level_after": result.after.defocus_level if result.after is not None else None,
                             "objects": object_counts(reference_objects, defocused, result.image,
                                                      optics.pixel_size_um),
                             **qualities})
            bar.update(1)
    bar.close()
    summary = summarise(rows)
    summary["by_level"] = {str(level): summarise([r for r in rows if r["level"] == level]) for level in levels}
    return {"images": [str(p) for p in paths], "optics": optics.to_dict(), "levels": levels,
            "rl_iterations": RL_ITERATIONS, "rows": rows,
            "summary": summary}


#: Planes up to this distance from the best plane are evaluated by default.
MAX_DISTANCE_UM = 3.0


def evaluate_stack(path, model=None, classifier=None, channel=None, z_step_um=None, pixel_size_um=None,
                   objective: Optics | None = None, best_plane: int | None = None,
                   max_distance_um: float = MAX_DISTANCE_UM) -> dict:
    """The refocus model on a real through-focus stack: each plane near focus against the best plane.

    Parameters
    ----------
    path : path-like
        A z-stack TIFF (its first time point is used).
    model, classifier : optional
        The refocus model and the focus classifier (default: the shipped ones).
    channel : int or str, optional
    z_step_um, pixel_size_um : float, optional
        Default: what the file states (both are needed).
    objective : Optics, optional
        The stack's objective (NA, immersion index, wavelength) for Richardson-Lucy's PSF and for
        ``defocus_um``; default: the classifier's training optics.
    best_plane : int, optional
        The reference plane; default: the sharpest by normalised variance.
    max_distance_um : float
        Planes up to this far from the reference are evaluated.

    Returns
    -------
    dict
        ``planes`` (one record per evaluated plane), ``summary`` and the stack's description.
    """
    from ..errors import InvalidParameterError
    from ..images import read_stack
    from ..inference import objective_optics
    from ..loader import load_model
    from ..stacks.check import normalized_variance
    from .model import load_refocus_model

    model, classifier = load_refocus_model(model), load_model(classifier)
    stack = read_stack(path)
    planes = stack.data[0, stack.channel_index(channel)]
    z_step_um = z_step_um or stack.z_step_um
    pixel_size_um = pixel_size_um or stack.pixel_size_um
    if not z_step_um or not pixel_size_um:
        raise InvalidParameterError(f"{path}: the stack states no z step or pixel size; give them",
                                    setting="z_step_um" if not z_step_um else "pixel_size_um")
    objective = objective or objective_optics(classifier)
    optics = dataclasses.replace(objective, pixel_size_um=float(pixel_size_um), defocus_phase="exact")
    sharpness = normalized_variance(planes)
    reference_index = int(np.nanargmax(sharpness)) if best_plane is None else int(best_plane)
    if not 0 <= reference_index < len(planes):
        raise InvalidParameterError(f"best plane {reference_index} is not in the stack (0-{len(planes) - 1})",
                                    setting="best_plane")
    reference = planes[reference_index].astype(np.float64)
    reference_objects = count_objects(reference, pixel_size_um)
    records = []
    for index, plane in enumerate(planes):
        distance = abs(index - reference_index) * float(z_step_um)
        if index == reference_index or distance > max_distance_um + 1e-9:
            continue
        result = refocus_image(plane, model, classifier, name=f"plane {index}", pixel_size_um=float(pixel_size_um),
                               pixel_size_source="given", objective=objective, force=True)
        if result.before is None:
            records.append({"plane": index, "distance_um": distance, "skipped": result.reason})
            continue
        qualities = compare_methods(plane, reference, result.image, optics, distance,
                                    float(result.before.defocus_um), float(plane.min()))
        level = result.before.defocus_level
        records.append({
            "plane": index, "distance_um": distance, **qualities,
            "level_before": level, "level_after": result.after.defocus_level if result.after else None,
            "defocus_um_estimated": float(result.before.defocus_um),
            "user_gets_refocused": not refusal(result.before, model),
            "objects": object_counts(reference_objects, plane, result.image, pixel_size_um),
        })
    measured = [r for r in records if "skipped" not in r]
    summary = summarise(measured) if measured else {}
    if measured:
        summary.update(
            planes=len(measured),
            planes_losing_over_half_db=sum(r["gain_db"] < -0.5 for r in measured),
            object_count_error=summary["object_count_error_refocused"])
    return {"stack": str(path), "planes_in_stack": len(planes), "best_plane": reference_index,
            "z_step_um": float(z_step_um), "pixel_size_um": float(pixel_size_um), "optics": optics.to_dict(),
            "max_distance_um": max_distance_um, "refocus_model": str(model.directory),
            "rl_iterations": RL_ITERATIONS, "planes": records, "summary": summary}
