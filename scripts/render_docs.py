#!/usr/bin/env python3
"""Render the measured figures in README.md and docs/*.md from the results that hold them.

A figure the docs quote is never typed by hand. It sits between two markers, and this
script writes what is between them from the committed results:

    <!-- results:NAME -->
    (a table or paragraph, written by the renderer NAME)
    <!-- /results -->

or, inside a sentence, ``<!-- results:NAME -->7.7-9.4x<!-- /results -->``. A marker whose
content spans lines is a block (the renderer's text on lines of its own); one on a single
line stays inline (the renderer's text must then be one line). The renderers (RENDERERS
below) read ``benchmarks/results/*.json``, the shipped model's ``evaluation.json`` and
``config.json``, and the worked example's ``docs/zstack-example/evaluate_stack.json``.
After ``make bench`` writes new results, run this script and commit the docs with them.

Usage::

    python scripts/render_docs.py            # rewrite the docs whose figures changed
    python scripts/render_docs.py --check    # exit 1 and name every doc that is stale

Only the standard library is needed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
SHIPPED_MODEL = "focusnet/models/default"
ZSTACK_EXAMPLE = "docs/zstack-example/evaluate_stack.json"

#: The tools' out-of-focus rule: a whole-image level of at least this (focusnet plate, the QC
#: pipeline's "> 2", evaluate --out-of-focus). tests/unit/test_render_docs.py checks it against the code.
OUT_OF_FOCUS_LEVEL = 3
#: The highest level that counts as in focus in the checks below.
IN_FOCUS_LEVEL = 1

MARKER = re.compile(r"<!-- results:([A-Za-z0-9_.-]+) -->(.*?)<!-- /results -->", re.DOTALL)
OPENING = re.compile(r"<!-- results:")


class RenderError(ValueError):
    """A marker that cannot be rendered: unknown name, unclosed or nested, or a multi-line inline figure."""


class Results:
    """The committed result files, read once each (paths relative to the repository root)."""

    def __init__(self, root=REPO):
        self.root = Path(root)
        self._cache = {}

    def json(self, relative: str):
        if relative not in self._cache:
            self._cache[relative] = json.loads((self.root / relative).read_text(encoding="utf-8"))
        return self._cache[relative]

    def benchmark(self, name: str):
        return self.json(f"{RESULTS}/{name}.json")


# --- formatting ---------------------------------------------------------------------------------

def _percent(value: float) -> str:
    return f"{value:.1%}"


def _range(values, digits: int = 1, unit: str = "") -> str:
    low, high = min(values), max(values)
    text = f"{low:.{digits}f}" if f"{low:.{digits}f}" == f"{high:.{digits}f}" else f"{low:.{digits}f}-{high:.{digits}f}"
    return text + unit


def _table(headers, rows) -> list:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _short(name: str) -> str:
    """A BBBC006 file name by its well ('a01'), other names as they are."""
    match = re.search(r"__([a-p]\d\d)__", name)
    return match.group(1) if match else name


def _size(text: str) -> str:
    """'2048x2048' -> '2048 x 2048'."""
    return text.replace("x", " x ")


# --- speed (benchmarks/speed.py) ----------------------------------------------------------------

def _speed_rows(results):
    return results.benchmark("speed")["sizes"]


def speed_ratio(results) -> str:
    """Per image, the `paper` architecture's time over focusnet's, across image sizes."""
    return _range([r["paper_arch_s"] / r["focusnet_s"] for r in _speed_rows(results)], unit="x")


def speed_network_ratio(results) -> str:
    """The same ratio for the networks alone (no tiling, content test or aggregation)."""
    return _range([r["paper_network_s"] / r["focusnet_network_s"] for r in _speed_rows(results)], unit="x")


def speed_miq_share(results) -> str:
    """focusnet's time as a share of MeasureImageQuality's blur features, across image sizes."""
    shares = [100 * r["focusnet_s"] / r["measureimagequality_s"] for r in _speed_rows(results)]
    return _range(shares, digits=0, unit=" %")


def speed(results) -> str:
    data = results.benchmark("speed")
    rows = [[_size(r["size"]), r["patches"], f"{r['focusnet_s']:.3f}", f"{r['onnx_s']:.3f}", f"{r['paper_arch_s']:.3f}",
             f"{r['measureimagequality_s']:.3f}", f"{r['plls_s']:.3f}",
             f"{r['paper_arch_s'] / r['focusnet_s']:.1f}x", f"{r['paper_network_s'] / r['focusnet_network_s']:.1f}x",
             f"{r['focusnet_network_s'] / r['onnx_network_s']:.2f}",
             f"{r['focusnet_s'] / r['measureimagequality_s']:.2f}",
             f"{r['focusnet_ready_mb']:.0f} MB, {r['focusnet_peak_mb']:.0f} MB",
             f"{r['onnx_ready_mb']:.0f} MB, {r['onnx_peak_mb']:.0f} MB"] for r in data["sizes"]]
    headers = ["image", "patches", "focusnet", "focusnet, onnxruntime", "`paper` architecture",
               "MeasureImageQuality blur", "PowerLogLogSlope alone", "paper / focusnet", "same, network alone",
               "TensorFlow / onnxruntime, network", "focusnet / MIQ", "TensorFlow memory: ready, peak",
               "onnxruntime memory: ready, peak"]
    stack = data["stack"]
    rates = ", ".join(f"{rate:.1f} planes/s with {runtime}" for runtime, rate in stack["planes_per_s"].items())
    # The targets are speed.py's own sentences (one copy of their wording and thresholds).
    return "\n".join([f"Seconds per image (median block; warm-up excluded), {data['machine']}:", "",
                      *_table(headers, rows), "",
                      f"A stack of {stack['planes']} planes of {stack['width']} x {stack['height']} in the library "
                      f"(`predict_stack`, model loaded, best of {stack['repeats']}): {rates}.", "",
                      "Targets:", "", *(f"- {line}." for line in data["targets"])])


def profile(results) -> str:
    """Seconds per stage of one image, per runtime (benchmarks/profile.py), and the share around the network."""
    data = results.benchmark("profile")
    stages = list(data["rows"][0]["stages"])
    rows = [[_size(r["image"]), r["backend"], f"{r['total']:.4f}", *(f"{r['stages'][stage]:.4f}" for stage in stages),
             f"{1 - r['stages']['network'] / r['total']:.0%}"] for r in data["rows"]]
    return "\n".join([f"Seconds per image by stage, mean of {data['repeats']} profiled runs after a warm-up "
                      f"({data['machine']}):", "",
                      *_table(["image", "runtime", "total", *stages, "around the network"], rows)])


def napari(results) -> str:
    """The napari widget against the library on the same stacks (benchmarks/napari_widget.py)."""
    data = results.benchmark("napari")
    rows = [[f"{r['planes']} x {r['width']} x {r['height']}", f"{r['library_s']:.2f} s", f"{r['widget_s']:.2f} s",
             f"{r['ratio']:.2f}", f"{r['curve_painted_s']:.2f} s", f"{1000 * r['longest_event_loop_gap_s']:.0f} ms"]
            for r in data["stacks"]]
    first = data["stacks"][0]
    verdict = "met" if first["ratio"] <= data["target_ratio"] else "missed"
    return "\n".join([f"Best of {data['repeats']}, {data['machine']}, {data['model']}:", "",
                      *_table(["stack (planes x width x height)", "library", "widget: click to result",
                               "widget / library", "focus curve painted", "longest wait of the event loop"], rows), "",
                      f"Target: at {first['planes']} x {first['width']} x {first['height']}, the widget at most "
                      f"{data['target_ratio']:g}x the library's time: {first['ratio']:.2f}x ({verdict})."])


def imagej(results) -> str:
    """The ImageJ plugin's Java engine against predict_image, seconds per image (benchmarks/imagej_engine.py)."""
    data = results.benchmark("imagej")
    rows = [[_size(r["image"]), f"{r['java_s']:.3f} s", f"{r['java_first_s']:.3f} s", f"{r['onnxruntime_s']:.3f} s",
             f"{r['tensorflow_s']:.3f} s", f"{r['java_over_onnxruntime']:.1f}x"] for r in data["rows"]]
    worst = max(r["java_over_onnxruntime"] for r in data["rows"])
    verdict = "met" if worst <= data["target_ratio"] else "missed"
    return "\n".join([f"Seconds per image, best of {data['repeats']} ({data['machine']}; shipped model; the Java "
                       "engine warm, and its first run of each image in the JVM beside it):", "",
                      *_table(["image", "Java engine (ImageJ plugin)", "its first run", "onnxruntime", "TensorFlow",
                               "Java / onnxruntime"], rows), "",
                      f"Target: the Java engine at most {data['target_ratio']:g}x onnxruntime's time per image: "
                      f"{worst:.1f}x ({verdict})."])


def speed_cellprofiler(results) -> str:
    run = results.benchmark("speed")["cellprofiler"]
    return (f"{run['steady_images_per_s']:.1f} images/s at steady state ({run['whole_run_images_per_s']:.1f} images/s "
            f"for a whole run of {2 * run['images']} images, start-up {run['startup_s']:.0f} s)")


# --- accuracy (benchmarks/accuracy.py) ----------------------------------------------------------

def accuracy(results) -> str:
    data = results.benchmark("accuracy")
    methods = ["FocusScore", "LocalFocusScore", "Correlation", "PowerLogLogSlope", "focusnet"]
    rows = [[condition] + [f"{scores[m]:.3f}" for m in methods] for condition, scores in data["fscore"].items()]
    real = data["real_images"]
    out = sum(r["out_of_focus"] for r in real)
    rows.append([f"real images ({out} MCF-7 out of focus, {len(real) - out} sharp BBBC006)"]
                + [f"{data['real_images_fscore'][m]:.3f}" for m in methods])
    ordering = data["level_ordering_spearman"]
    levels = data["focusnet_levels"]
    lines = [
        f"Synthetic defocus of {len(data['sources'])} in-focus images the shipped model was not trained on "
        f"({', '.join(f'`{s}`' for s in data['sources'])}), {len(data['seeds'])} noise seeds; binary task on "
        f"{data['binary_samples_per_condition']} images per condition (classic thresholds tuned on "
        f"{data['validation_samples']} of them, F-score on the rest; positive = out of focus). focusnet is not "
        f"tuned: {data['focusnet_rule']}.",
        "",
        *_table(["F-score"] + methods, rows),
        "",
        *_table(["ordering of the 11 levels (mean Spearman, 1 = perfect)"] + methods,
                [["as imaged"] + [f"{ordering[m]:.3f}" for m in methods]]),
        "",
        f"focusnet's absolute level on the same series: exact {_percent(levels['exact_accuracy'])}, within one "
        f"{_percent(levels['within_one_accuracy'])}." + (
            " Images without a level (too noisy to judge, or no content; not flagged, and misses): " + ", ".join(
                f"{condition} {count}" for condition, count in levels["without_a_level"].items()) + "."
            if "without_a_level" in levels else ""),
    ]
    rule = f"out of focus if level >= {OUT_OF_FOCUS_LEVEL}"
    if data["focusnet_rule"] != rule:
        lines += ["", f"**This run judged focusnet by another rule than its tools use ({rule}).**"]
    return "\n".join(lines)


# --- architectures (benchmarks/architectures.py) ------------------------------------------------

def architectures(results) -> str:
    data = results.json(f"{RESULTS}/architectures/comparison.json")
    runs = sorted(data["results"].values(), key=lambda r: (r["architecture"] != "default", r["learning_rate"]))
    rows = [[f"`{r['architecture']}`", f"{r['learning_rate']:g}", f"{r['parameters']:,}", f"{r['weights_mb']:.2f} MB",
             _percent(r["exact_accuracy"]), _percent(r["within_one_accuracy"]),
             _percent(min(v["within_one_accuracy"] for v in r["variants"]))] for r in runs if "variants" in r]
    failed = [r for r in runs if "variants" not in r]
    lines = [f"{data['steps']} steps of {data['batch_size']} patches, seed {data['seed']}, each evaluated on the "
             f"shipped model's held-out images ({data['machine']}):", "",
             *_table(["architecture", "learning rate", "parameters", "weights", "exact", "within one",
                      "worst camera variant, within one"], rows)]
    if failed:
        lines += ["", "Not evaluated (training did not converge): "
                  + ", ".join(f"`{r['architecture']}` at {r['learning_rate']:g}" for r in failed) + "."]
    return "\n".join(lines)


# --- stacks, memory, cluster, ONNX --------------------------------------------------------------

def stacks(results) -> str:
    data = results.benchmark("stacks")
    rows = [[f"{r['planes']} x {r['width']} x {r['height']}", f"{r['best_plane']} ({r['true_focus']})",
             f"{r['library_planes_per_s']:.1f} ({r['library_s']:.2f} s per stack)",
             f"{r['command_planes_per_s']:.1f} ({r['command_s']:.1f} s)"] for r in data["stacks"]]
    return "\n".join([f"{data['machine']}, shipped model:", "",
                      *_table(["stack (planes x width x height)", "best plane (true)", "library: planes/s",
                               "command: planes/s"], rows)])


def stacks_throughput(results) -> str:
    parts = [f"{r['library_planes_per_s']:.0f} planes/s for {r['width']} x {r['height']} planes"
             if r["library_planes_per_s"] >= 100 else
             f"{r['library_planes_per_s']:.1f} planes/s for {r['width']} x {r['height']} planes"
             for r in results.benchmark("stacks")["stacks"]]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def memory(results) -> str:
    data = results.benchmark("memory")
    rows = [[f"{r['width']} x {r['height']}", f"{r['peak_mb']:.0f} MB", f"{r['seconds']:.1f} s"]
            for r in data["images"]]
    largest = max(data["images"], key=lambda r: r["width"] * r["height"])
    verdict = "met" if largest["peak_mb"] < data["target_mb"] else "missed"
    return "\n".join([f"Peak resident memory of one `focusnet predict --patches-csv --overlay-dir` per fresh process "
                      f"({data['machine']}):", "", *_table(["image", "peak memory", "time"], rows), "",
                      f"Target: below {data['target_mb']} MB at {largest['width']} x {largest['height']} ({verdict})."])


def cluster(results) -> str:
    data = results.benchmark("cluster")
    rows = [[f"`{r['run']}`" if r["run"].startswith("-") else r["run"], f"{r['seconds']:.1f} s",
             f"{r['images_per_s']:.1f}"] for r in data["runs"]]
    images = {r["images"] for r in data["runs"]}
    same = "identical" if data["identical_tables"] else "NOT identical"
    return "\n".join([f"{'/'.join(map(str, sorted(images)))} images of 696 x 520, start-up included "
                      f"({data['machine']}); tables {same} across the runs:", "",
                      *_table(["run", "time", "images/s"], rows)])


def onnx(results) -> str:
    data = results.benchmark("onnx")
    backends = {b["backend"]: b for b in data["backends"]}
    tf, ort = backends["tensorflow"], backends["onnxruntime"]
    rows = [[name, f"{b['import_s']:.2f} s", f"{b['seconds_per_image']:.3f} s", f"{b['peak_mb']:.0f} MB"]
            for name, b in (("TensorFlow", tf), ("onnxruntime", ort))]
    time_ratio = ort["seconds_per_image"] / tf["seconds_per_image"]
    faster_or_slower = (f"takes {time_ratio:.1f} times TensorFlow's time" if time_ratio > 1
                        else f"takes {time_ratio:.2f} of TensorFlow's time")
    return "\n".join([
        f"The shipped model on one {data['image']} image of real in-focus tiles, each backend in a fresh process "
        f"({data['machine']}):", "",
        *_table(["backend", "import", "time per image", "peak memory"], rows), "",
        f"onnxruntime imports {tf['import_s'] / ort['import_s']:.0f} times faster and peaks "
        f"{tf['peak_mb'] - ort['peak_mb']:.0f} MB lower; per image it {faster_or_slower} on this machine. "
        f"The largest difference between the two backends' probabilities on this image is "
        f"{data['max_probability_difference']:.1e}."])


# --- the shipped model ----------------------------------------------------------------------

def _real_check(evaluation, kind):
    return next((check for check in evaluation.get("real_images", []) if check["kind"] == kind), None)


def shipped_model(results) -> str:
    """The shipped model's checks against its targets, from its evaluation and the benchmarks."""
    evaluation = results.json(f"{SHIPPED_MODEL}/evaluation.json")
    config = results.json(f"{SHIPPED_MODEL}/config.json")
    simulated = evaluation["simulated"]
    trained = {Path(p).name for p in config["training"]["images"]}
    held_out = [Path(p).name for p in simulated["images"]]
    worst = min(v["within_one_accuracy"] for v in simulated["variants"])
    loss = (simulated["within_one_accuracy"] - worst) * 100
    exact = ", ".join(f"{v['name']} {_percent(v['exact_accuracy'])}" for v in simulated["variants"])
    rows = [
        [f"simulated series (levels 0-10) of the {len(held_out)} held-out images, {simulated['num_predictions']} "
         "predictions: within one level", ">= 98 %", _percent(simulated["within_one_accuracy"])],
        ["same, exact level", ">= 80 %", _percent(simulated["exact_accuracy"])],
        ["gain x0.2 / x5, offset +100 / +1000: loss of within-one accuracy", "<= 2 points",
         f"{loss:.1f} points (exact: {exact})"],
        [f"patches with content and certainty >= {simulated['patch_certainty_threshold']:g}: within one level", "",
         f"{_percent(simulated['patch_within_one_accuracy'])} ({simulated['confident_patches']} patches)"],
    ]
    expectations = (("out_of_focus", f"level >= {OUT_OF_FOCUS_LEVEL}"), ("in_focus", f"level <= {IN_FOCUS_LEVEL}"))
    for kind, expectation in expectations:
        check = _real_check(evaluation, kind)
        if check is None:
            continue
        images = check["images"]
        in_training = [r["image"] for r in images if r["image"] in trained]
        what = "real out-of-focus MCF-7 images" if kind == "out_of_focus" else "real sharp BBBC006 images"
        note = (f" ({len(in_training)} of the {len(images)} were training images: "
                + ", ".join(_short(name) for name in in_training) + ")") if in_training else " (none trained on)"
        levels = sorted({r["defocus_level"] for r in images if r["defocus_level"] is not None})
        rows.append([f"{what}{note}, {expectation}", "all",
                     f"{sum(r['as_expected'] for r in images)} of {len(images)} (levels: "
                     f"{', '.join(map(str, levels))})"])
        if kind == "in_focus":
            certainties = [r["aggregate_certainty"] for r in images]
            low = [r for r in images if r["aggregate_certainty"] < 0.5]
            result = (f"{len(images) - len(low)} of {len(images)} ({_range(certainties, 2)}"
                      + ("; below: " + ", ".join(f"{_short(r['image'])} {r['aggregate_certainty']:.2f}" for r in low)
                         if low else "") + ")")
            rows.append(["same, aggregate certainty", ">= 0.5 each", result])
    return "\n".join(_table(["check", "target", "result"], rows))


def _parameters(npz: Path) -> int:
    """Number of parameters in a model's weights.npz, from the arrays' headers (standard library only)."""
    import ast
    import zipfile

    total = 0
    with zipfile.ZipFile(npz) as archive:
        for name in archive.namelist():
            with archive.open(name) as array:
                magic = array.read(8)
                length_bytes = 2 if magic[6] == 1 else 4
                length = int.from_bytes(array.read(length_bytes), "little")
                shape = ast.literal_eval(array.read(length).decode("latin1"))["shape"]
            count = 1
            for dimension in shape:
                count *= dimension
            total += count
    return total


def shipped_model_speed(results) -> str:
    """The shipped model's size, speed and accuracy against `paper` (weights, speed.json, comparison.json)."""
    weights = results.root / SHIPPED_MODEL / results.json(f"{SHIPPED_MODEL}/config.json")["weights"]["file"]
    runs = results.json(f"{RESULTS}/architectures/comparison.json")
    comparison = runs["results"]

    def best(architecture):
        return max((r for r in comparison.values() if r["architecture"] == architecture and "variants" in r),
                   key=lambda r: r["within_one_accuracy"])

    default, paper = best("default"), best("paper")
    data = results.benchmark("speed")
    reference = next(r for r in data["sizes"] if r["size"] == data["reference_size"])
    speedup = reference["paper_arch_s"] / reference["focusnet_s"]
    rows = [
        ["weights", "<= 5 MB", f"{weights.stat().st_size / 1e6:.2f} MB ({_parameters(weights):,} parameters)"],
        [f"speed per image against `paper` in the same code, {_size(data['reference_size'])}", ">= 10x",
         f"{speedup:.1f}x ({'met' if speedup >= 10 else 'missed'}; {speed_ratio(results)} over all sizes, "
         f"{speed_network_ratio(results)} for the network alone)"],
        [f"accuracy against `paper` trained the same way ({runs['steps']} steps), each at its best learning rate",
         "at least as accurate", f"{_percent(default['within_one_accuracy'])} (at {default['learning_rate']:g}) vs "
         f"{_percent(paper['within_one_accuracy'])} (at {paper['learning_rate']:g}) within one"],
    ]
    return "\n".join(_table(["check", "target", "result"], rows))


# --- the worked example: a 100x stack -------------------------------------------------------

def _stack_sides(data):
    """Per side of the sharpest plane: how far level 0 holds, and where level 10 is first reached (µm)."""
    planes = data["planes"]
    best = data["sharpest_plane"]
    sides = {}
    for name, side in (("below", planes[best - 1::-1] if best > 0 else []), ("above", planes[best + 1:])):
        in_focus = 0.0
        for plane in side:
            if plane["defocus_level"] != 0:
                break
            in_focus = plane["distance_um"]
        first_ten = next((p["distance_um"] for p in side if p["defocus_level"] == 10), None)
        sides[name] = (in_focus, first_ten)
    return sides


def zstack_example(results) -> str:
    data = results.json(ZSTACK_EXAMPLE)
    planes = data["planes"]
    best = data["sharpest_plane"]
    neighbours = [p["defocus_level"] for p in planes if abs(p["plane"] - best) == 1]
    best_level = planes[best]["defocus_level"]
    rows = [
        ["sharpest plane's level <= 1", f"{'met' if best_level <= 1 else 'missed'}: {best_level} (plane {best})"],
        ["its neighbours' (one z step away) <= 2",
         f"{'met' if all(n <= 2 for n in neighbours) else 'missed'}: {' and '.join(map(str, neighbours))}"],
        ["Spearman(level, distance) >= 0.9",
         f"{'met' if data['spearman_level'] >= 0.9 else 'missed'}: {data['spearman_level']:.2f}; `defocus_um`: "
         f"{data['spearman_defocus_um']:.2f}"],
        ["`defocus_um` within a factor 1.5 of the distance, on average, from 0.5 µm to the first level 10",
         f"{'met' if 1 / 1.5 <= data['defocus_ratio'] <= 1.5 else 'missed'}: {data['defocus_ratio']:.2f} (geometric "
         f"mean of `defocus_um / distance` over {data['ratio_planes']} planes)"],
    ]
    sides = _stack_sides(data)
    (below_zero, below_ten), (above_zero, above_ten) = sides["below"], sides["above"]

    def reach(distance):
        return "not reached" if distance is None else f"{distance:.1f} µm"

    return "\n".join([
        f"{len(planes)} planes, {data['z_step_um']:g} µm apart, {data['pixel_size_um']:.2f} µm pixels; "
        f"{data['measured_planes']} measured:", "",
        *_table(["target", "result"], rows), "",
        f"Level 0 from {below_zero:.1f} µm below to {above_zero:.1f} µm above the sharpest plane (below: lower z); "
        f"level 10 from {reach(below_ten)} below and {reach(above_ten)} above."])


# --- refocusing (the shipped refocus model's evaluation.json, benchmarks/refocus.py) ------------------------

SHIPPED_REFOCUS = "focusnet/models/refocus"
REFOCUS_METHODS = ("unrestored", "refocused", "rl_true_distance", "rl_estimated_distance")


def _psnr_cells(summary) -> list:
    return [f"{summary[method]['psnr']:.2f}" for method in REFOCUS_METHODS]


def refocus_synthetic(results) -> str:
    """The shipped refocus model on simulated defocus of held-out images, per level, against its targets."""
    evaluation = results.json(f"{SHIPPED_REFOCUS}/evaluation.json")
    config = results.json(f"{SHIPPED_REFOCUS}/config.json")
    synthetic = evaluation["synthetic"]
    summary = synthetic["summary"]
    rows = [[f"level {level}", *_psnr_cells(s), f"{s['gain_db']:+.2f}", f"{s['worst_gain_db']:+.2f}",
             f"{s['mean_level_before']:.1f} -> {s['mean_level_after']:.1f}"]
            for level, s in summary["by_level"].items()]
    rows.append(["all", *_psnr_cells(summary), f"{summary['gain_db']:+.2f}", f"{summary['worst_gain_db']:+.2f}",
                 f"{summary['mean_level_before']:.1f} -> {summary['mean_level_after']:.1f}"])
    oracle = summary["refocused"]["psnr"] - summary["rl_true_distance"]["psnr"]
    estimated = summary["refocused"]["psnr"] - summary["rl_estimated_distance"]["psnr"]

    def met(condition):
        return "met" if condition else "missed"

    trained = {Path(p).name for p in config["training"]["images"]}
    watched = {Path(p).name for p in config["training"]["validation_images"]}
    images = ", ".join(_short(Path(p).name) + (" (watched during training)" if Path(p).name in watched else "")
                       for p in synthetic["images"] if Path(p).name not in trained)
    return "\n".join([
        f"Images never trained on: {images}; each level through the camera as imaged and four camera "
        f"variants with Poisson noise ({summary['count']} images). Mean PSNR in dB against the noise-free in-focus "
        "image, after a least-squares intensity match:", "",
        *_table(["", "unrestored", "refocused", "Richardson-Lucy, true distance (oracle)",
                 "Richardson-Lucy, classifier's distance", "gain", "worst gain", "classifier level"], rows), "",
        f"- Mean gain >= 4 dB: {met(summary['gain_db'] >= 4)} ({summary['gain_db']:+.2f} dB).",
        f"- At least 1 dB better than Richardson-Lucy with the true distance: {met(oracle >= 1)} ({oracle:+.2f} dB).",
        f"- Better than Richardson-Lucy with the classifier's distance: {met(estimated > 0)} ({estimated:+.2f} dB).",
        f"- Object counts (fixed segmentation: Gaussian sigma 1 px, Otsu, objects of at least 4 µm²) within 15 % "
        f"of the in-focus image's: {met(summary['object_count_error_refocused'] <= 0.15)} (mean error "
        f"{_percent(summary['object_count_error_refocused'])}; unrestored: "
        f"{_percent(summary['object_count_error_unrestored'])}).",
        f"- Levels the model restores (mean gain >= 1 dB, no image losing over 0.5 dB): "
        f"{', '.join(map(str, config['restorable_levels']))}."])


def _compared(results) -> list:
    return results.json(f"{SHIPPED_REFOCUS}/evaluation.json").get("compared") or []


def refocus_stack(results) -> str:
    """Each compared model on the real stack it was evaluated on (the shipped model's evaluation.json)."""
    rows = []
    for other in _compared(results):
        for stack in other["stacks"]:
            s = stack["summary"]
            if not s:
                continue
            rows.append([other["label"], s["planes"], *_psnr_cells(s), f"{s['gain_db']:+.2f}",
                         f"{s['worst_gain_db']:+.2f}", s["planes_losing_over_half_db"],
                         f"{s['mean_level_before']:.2f} -> {s['mean_level_after']:.2f}",
                         _percent(s["object_count_error"])])
    return "\n".join(_table(["refocus model", "planes", "unrestored", "refocused", "RL, true distance",
                              "RL, classifier's distance", "mean gain", "worst gain", "planes losing > 0.5 dB",
                              "level before -> after", "object count error"], rows))


def refocus_ablation(results) -> str:
    """The compared models on the held-out simulated defocus (the shipped model's evaluation.json)."""
    rows = [[other["label"], f"{s['refocused']['psnr']:.2f}", f"{s['gain_db']:+.2f}", f"{s['worst_gain_db']:+.2f}",
             f"{s['mean_level_after']:.2f}"] for other in _compared(results) if (s := other["synthetic"])]
    return "\n".join(_table(["model", "refocused PSNR (dB)", "mean gain", "worst gain", "classifier level after"],
                             rows))


def refocus_speed(results) -> str:
    data = results.benchmark("refocus")
    rows = [[_size(name.replace(" ", "")), f"{v['network_s']:.2f} s", f"{v['refocus_image_s']:.2f} s",
             f"{v['richardson_lucy_s']:.1f} s", f"{v['peak_mb']:.0f} MB"] for name, v in data["sizes"].items()]
    return "\n".join([f"{data['machine']}:", "", *_table(
        ["image", "network", "refocus_image (classifier before and after)", "Richardson-Lucy, 30 iterations",
         "peak memory"], rows)])


def refocus_short_runs(results) -> str:
    """The last validation PSNR of each short loss run (benchmarks/results/refocus_short_runs/*.csv), inline."""
    import csv

    names = {"none": "pixel loss", "classifier": "with the classifier's features", "random": "with random features"}
    parts = []
    for key, name in names.items():
        path = results.root / RESULTS / "refocus_short_runs" / f"{key}_training_log.csv"
        with open(path, newline="", encoding="utf-8") as handle:
            last = list(csv.DictReader(handle))[-1]
        parts.append(f"{name} {float(last['val_psnr_output']):.2f} dB")
    return ", ".join(parts)


def real_stacks(results) -> str:
    """defocus_um against the distance on the real stack, with and without fine-tuning (benchmarks/real_stacks.py)."""
    data = results.benchmark("real_stacks")
    optics = data["optics"]
    rows = [[row["model"], row["planes"], f"{row['aperture']:g}", row["pupil"], f"{row['spearman_level']:.2f}",
             f"{row['spearman_defocus_um']:.2f}", f"{row['defocus_ratio']:.2f} ({row['ratio_planes']} planes)"]
            for row in data["rows"]]
    return "\n".join([f"`{data['stack']}` (NA {optics['na']:g}, n {optics['refractive_index']:g}, "
                      f"{optics['wavelength_um']:g} µm):", "",
                      *_table(["model", "planes", "NA for `defocus_um`", "pupil", "Spearman(level, distance)",
                               "Spearman(`defocus_um`, distance)", "`defocus_um` / distance (geometric mean)"],
                              rows)])


def accuracy_vs_snr(results) -> str:
    """Within-one accuracy of patches by structure-to-noise bin, and the threshold (benchmarks/accuracy_vs_snr.py)."""
    data = results.benchmark("accuracy_vs_snr")

    def label(row):
        return f"{row['snr_low']:g}+" if row["snr_high"] is None else f"{row['snr_low']:g}-{row['snr_high']:g}"

    bins = ", ".join(f"{label(row)}: {_percent(row['within_one'])}" for row in data["bins"])
    return (f"{bins}; bright patches (16 and more) {_percent(data['bright_within_one'])}, so patches below "
            f"{data['too_noisy_below']:g} are too noisy to judge")


#: Marker name -> renderer.
RENDERERS = {
    "speed": speed,
    "speed-ratio": speed_ratio,
    "speed-network-ratio": speed_network_ratio,
    "speed-miq-share": speed_miq_share,
    "speed-cellprofiler": speed_cellprofiler,
    "profile": profile,
    "napari": napari,
    "imagej": imagej,
    "accuracy": accuracy,
    "architectures": architectures,
    "stacks": stacks,
    "stacks-throughput": stacks_throughput,
    "memory": memory,
    "cluster": cluster,
    "onnx": onnx,
    "shipped-model": shipped_model,
    "shipped-model-speed": shipped_model_speed,
    "zstack-example": zstack_example,
    "refocus-synthetic": refocus_synthetic,
    "refocus-stack": refocus_stack,
    "refocus-ablation": refocus_ablation,
    "refocus-speed": refocus_speed,
    "accuracy-vs-snr": accuracy_vs_snr,
    "real-stacks": real_stacks,
    "refocus-short-runs": refocus_short_runs,
}


# --- the docs -----------------------------------------------------------------------------------

def render_text(text: str, results: Results, where: str = "text") -> str:
    """``text`` with every marked figure rendered again (see the module's docstring)."""

    def replace(match):
        name, inner = match.group(1), match.group(2)
        if OPENING.search(inner):
            raise RenderError(f"{where}: marker results:{name} is not closed before the next one opens")
        if name not in RENDERERS:
            raise RenderError(f"{where}: unknown marker results:{name} (known: {', '.join(sorted(RENDERERS))})")
        rendered = RENDERERS[name](results).strip("\n")
        if "\n" in inner:
            return f"<!-- results:{name} -->\n{rendered}\n<!-- /results -->"
        if "\n" in rendered:
            raise RenderError(f"{where}: results:{name} is a block; put its markers on lines of their own")
        return f"<!-- results:{name} -->{rendered}<!-- /results -->"

    rendered = MARKER.sub(replace, text)
    unclosed = len(OPENING.findall(text)) - len(MARKER.findall(text))
    if unclosed:
        raise RenderError(f"{where}: {unclosed} results marker(s) without <!-- /results -->")
    return rendered


def documents(root=REPO) -> list:
    """The docs that may quote figures: README.md and docs/*.md."""
    root = Path(root)
    return [root / "README.md"] + sorted((root / "docs").glob("*.md"))


def stale_documents(root=REPO) -> list:
    """``(path, rendered text)`` of every doc whose committed text differs from its rendering."""
    results = Results(root)
    stale = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        rendered = render_text(text, results, where=str(path.relative_to(root)))
        if rendered != text:
            stale.append((path, rendered))
    return stale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a doc is stale")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    try:
        stale = stale_documents(arguments.root)
    except (RenderError, OSError, KeyError, ValueError) as error:
        print(f"render_docs: {error}", file=sys.stderr)
        return 2
    for path, rendered in stale:
        relative = path.relative_to(arguments.root)
        if arguments.check:
            print(f"stale: {relative} (run python scripts/render_docs.py)", file=sys.stderr)
        else:
            path.write_text(rendered, encoding="utf-8")
            print(f"rendered {relative}")
    return 1 if arguments.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
