"""Speed and memory: focusnet against the paper's network and CellProfiler's MeasureImageQuality.

One process, one run: the same 16-bit image (built from 84 x 84 tiles of real images) goes
through

* focusnet with the shipped default model (``predict_image``: tiling, network, aggregation),
  with TensorFlow (the model folder) and with onnxruntime (``default.onnx``, the runtime of
  installs without TensorFlow),
* the ``paper`` architecture in the same code (random weights: speed does not depend on them),
* CellProfiler's MeasureImageQuality with its blur features (FocusScore, LocalFocusScore,
  Correlation, PowerLogLogSlope), run as a module on a Workspace,
* PowerLogLogSlope alone (MeasureImageQuality's own method),
* the networks alone on the image's patches (``predict_patches``, no tiling or aggregation),

at 696 x 520, 2048 x 2048 and 8192 x 8192 pixels. Each is warmed up once, then timed in
blocks of consecutive calls (as in a batch run), the methods in turn so that load changes
affect all alike; the median block's time per image is reported. Memory
is focusnet's alone, in a fresh process per runtime: the resident size with the runtime, the
model and the image loaded, and the largest sampled while it measures the image.
Then a 40-plane 2048 x 2048 through-focus stack (``benchmarks/stacks.py``'s) is measured in
the library (``predict_stack``, model loaded) with each runtime, best of three; the import
time of the TensorFlow-free runtime is taken in a fresh process (``import onnxruntime`` and
focusnet's inference modules). Last, a headless CellProfiler run of
``pipelines/measure_focus.cppipe`` gives images per second.

Usage::

    python benchmarks/speed.py [--json OUT.json] [--markdown OUT.md] [--smoke]

``--smoke`` runs tiny sizes once each (used by ``make test``).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacks import make_stack  # noqa: E402

from common import (  # noqa: E402
    REPO,
    best_seconds,
    classic_metrics,
    in_focus_sources,
    median_seconds_each,
    power_log_log_slope_only,
    quality_module,
    random_model,
    tiled_image,
)
from focusnet.contract import PATCH_SIZE  # noqa: E402

SIZES = ((520, 696), (2048, 2048), (8192, 8192))
SMOKE_SIZES = ((168, 252),)
#: Planes, height, width of the stack measured (and of the smoke run's).
STACK = (40, 2048, 2048)
SMOKE_STACK = (8, 168, 252)
#: The issue's targets at the reference size (benchmarks, not timed tests).
TARGET_PAPER_SPEEDUP = 20.0
TARGET_IMPORT_S = 0.5
TARGET_STACK_PLANES_PER_S = 25.0


class PeakMemory:
    """Largest resident set size (MB) of this process while the block runs, sampled every 5 ms."""

    def __enter__(self):
        import psutil

        self._process = psutil.Process()
        self.start_mb = self.peak_mb = self._process.memory_info().rss / 1e6
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 1e6)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 1e6)


def cellprofiler_throughput(count, smoke):
    """Images per second of measure_focus.cppipe, excluding CellProfiler's start-up.

    Two headless runs, of ``count`` and ``2 count`` images: the difference in wall time is
    the time of ``count`` images at steady state. The whole-run rate is reported too.
    """
    from focusnet.images import write_tiff

    sources = in_focus_sources()
    times = {}
    with tempfile.TemporaryDirectory() as scratch:
        for n in (count, 2 * count):
            images = Path(scratch) / f"images{n}"
            images.mkdir()
            for index in range(n):
                write_tiff(images / f"image{index:03d}.tif", tiled_image(520, 696, sources, seed=index))
            out = Path(scratch) / f"out{n}"
            start = time.perf_counter()
            subprocess.run([str(Path(sys.executable).parent / "cellprofiler"), "-c", "-r", "-p",
                            str(REPO / "pipelines" / "measure_focus.cppipe"), "-i", str(images), "-o", str(out),
                            "--plugins-directory", str(REPO / "plugins")], check=True, capture_output=True,
                           timeout=3600)
            times[n] = time.perf_counter() - start
            rows = (out / "Image.csv").read_text().strip().splitlines()
            if len(rows) != n + 1:
                raise RuntimeError(f"CellProfiler measured {len(rows) - 1} of {n} images")
            if not smoke:
                shutil.rmtree(out)
    steady = count / max(times[2 * count] - times[count], 1e-9)
    return {"images": count, "steady_images_per_s": steady, "whole_run_images_per_s": 2 * count / times[2 * count],
            "startup_s": max(times[count] - count / steady, 0.0)}


def focusnet_memory(height, width, runtime):
    """Memory of focusnet alone measuring one image, in a fresh process (nothing else loaded).

    Returns ``{"ready_mb": ..., "peak_mb": ...}``: the resident size once the runtime
    (``tensorflow`` or ``onnxruntime``), the model and the image are loaded (after one warm-up
    prediction on a small image), and the peak during the prediction of the whole image.
    """
    result = subprocess.run([sys.executable, __file__, "--memory-of", f"{height}x{width}", "--runtime", runtime],
                            check=True, capture_output=True, text=True, timeout=1800)
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_runtime_model(runtime):
    """The shipped model for a runtime: the model folder (TensorFlow) or ``default.onnx`` (onnxruntime)."""
    from focusnet.contract import SHIPPED_ONNX
    from focusnet.loader import load_model

    return load_model(SHIPPED_ONNX if runtime == "onnxruntime" else None)


def measure_memory_here(size, runtime):
    """The child side of :func:`focusnet_memory`: prints one JSON line."""
    from focusnet.inference import predict_image

    height, width = (int(v) for v in size.split("x"))
    model = load_runtime_model(runtime)
    image = tiled_image(height, width, in_focus_sources())
    predict_image(image[:168, :168], model)
    with PeakMemory() as memory:
        predict_image(image, model)
    print(json.dumps({"ready_mb": memory.start_mb, "peak_mb": memory.peak_mb}))


def light_runtime_import_seconds():
    """Seconds to import onnxruntime and focusnet's inference modules in a fresh interpreter (best of 3)."""
    code = ("import time; start = time.perf_counter(); import onnxruntime, focusnet.inference, focusnet.onnxmodel; "
            "print(time.perf_counter() - start)")
    return min(float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                                    timeout=600).stdout) for _ in range(3))


def stack_throughput(models, smoke):
    """Planes per second of ``predict_stack`` on a simulated through-focus stack, model loaded, per runtime."""
    from focusnet.stacks import predict_stack

    planes, height, width = SMOKE_STACK if smoke else STACK
    repeats = 1 if smoke else 3
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "stack.tif"
        make_stack(path, planes, height, width)
        rates = {}
        for runtime, model in models.items():
            predict_stack(path, model)  # warm-up
            rates[runtime] = planes / best_seconds(lambda model=model: predict_stack(path, model), repeats)
    return {"planes": planes, "height": height, "width": width, "repeats": repeats, "planes_per_s": rates}


def targets(reference, stack, import_s) -> list:
    """The issue's speed targets at the reference size, each met or missed (the docs render these lines)."""
    def verdict(met):
        return "met" if met else "missed"

    speedup = reference["paper_arch_s"] / reference["focusnet_s"]
    light = reference["focusnet_s"] / reference["onnx_s"]
    versus_miq = reference["focusnet_s"] / reference["measureimagequality_s"]
    stack_size = f"stack of {stack['planes']} planes of {stack['width']} x {stack['height']}"
    rates = stack["planes_per_s"]
    return [
        f"focusnet (TensorFlow) >= {TARGET_PAPER_SPEEDUP:g}x faster than the paper architecture at "
        f"{reference['size']}: {speedup:.1f}x ({verdict(speedup >= TARGET_PAPER_SPEEDUP)})",
        f"onnxruntime, the runtime without TensorFlow, at least as fast as TensorFlow end to end at "
        f"{reference['size']}: {light:.2f}x ({verdict(light >= 1)}); it imports in {import_s:.2f} s (target "
        f"< {TARGET_IMPORT_S:g} s: {verdict(import_s < TARGET_IMPORT_S)})",
        f"a {stack_size} at >= {TARGET_STACK_PLANES_PER_S:g} planes/s in the library: "
        + ", ".join(f"{rate:.1f} with {runtime} ({verdict(rate >= TARGET_STACK_PLANES_PER_S)})"
                    for runtime, rate in rates.items()),
        f"no slower than MeasureImageQuality's blur features at {reference['size']}: {versus_miq:.2f} of its time "
        f"({verdict(versus_miq <= 1)})",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--markdown", help="write the tables as Markdown")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (a check that it runs)")
    parser.add_argument("--memory-of", metavar="HEIGHTxWIDTH", help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="tensorflow", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory_of:
        return measure_memory_here(arguments.memory_of, arguments.runtime)

    from focusnet.inference import extract_patches, predict_image, tile_starts

    focusnet_model = load_runtime_model("tensorflow")
    onnx_model = load_runtime_model("onnxruntime")
    paper_model = random_model("paper")
    module = quality_module()
    sources = in_focus_sources()
    sizes = SMOKE_SIZES if arguments.smoke else SIZES
    rows = []
    for height, width in sizes:
        image = tiled_image(height, width, sources)
        repeats = 1 if arguments.smoke else (7 if height * width < 1e6 else 5 if height * width < 1e7 else 3)
        patches = extract_patches(image, [(y, x) for y in tile_starts(height) for x in tile_starts(width)])
        seconds = median_seconds_each({
            "focusnet_s": lambda image=image: predict_image(image, focusnet_model),
            "onnx_s": lambda image=image: predict_image(image, onnx_model),
            "paper_arch_s": lambda image=image: predict_image(image, paper_model),
            "focusnet_network_s": lambda patches=patches: focusnet_model.predict_patches(patches),
            "onnx_network_s": lambda patches=patches: onnx_model.predict_patches(patches),
            "paper_network_s": lambda patches=patches: paper_model.predict_patches(patches),
            "measureimagequality_s": lambda image=image: classic_metrics(module, image),
            "plls_s": lambda image=image: power_log_log_slope_only(module, image),
        }, repeats)
        row = {"size": f"{width}x{height}", "patches": (height // PATCH_SIZE) * (width // PATCH_SIZE), **seconds,
               **{f"focusnet_{key}": value for key, value in focusnet_memory(height, width, "tensorflow").items()},
               **{f"onnx_{key}": value for key, value in focusnet_memory(height, width, "onnxruntime").items()}}
        rows.append(row)
        print(f"{row['size']}: focusnet {row['focusnet_s']:.3f} s (onnxruntime {row['onnx_s']:.3f} s), "
              f"paper architecture {row['paper_arch_s']:.3f} s, "
              f"MeasureImageQuality blur {row['measureimagequality_s']:.3f} s, PowerLogLogSlope "
              f"{row['plls_s']:.3f} s; focusnet alone: {row['focusnet_ready_mb']:.0f} MB ready, peak "
              f"{row['focusnet_peak_mb']:.0f} MB (onnxruntime {row['onnx_peak_mb']:.0f} MB)", flush=True)
    stack = stack_throughput({"tensorflow": focusnet_model, "onnxruntime": onnx_model}, arguments.smoke)
    import_s = light_runtime_import_seconds()
    throughput = cellprofiler_throughput(2 if arguments.smoke else 24, arguments.smoke)
    reference = next((r for r in rows if r["size"] == "2048x2048"), rows[-1])
    target_lines = targets(reference, stack, import_s)
    report = {
        "reference_size": reference["size"],
        "focusnet_s": reference["focusnet_s"],
        "onnx_s": reference["onnx_s"],
        "paper_arch_s": reference["paper_arch_s"],
        "measureimagequality_s": reference["measureimagequality_s"],
        "plls_s": reference["plls_s"],
        "focusnet_peak_mb": reference["focusnet_peak_mb"],
        "focusnet_ready_mb": reference["focusnet_ready_mb"],
        "cellprofiler_images_per_s": throughput["steady_images_per_s"],
        "cellprofiler": throughput,
        "stack": stack,
        "onnx_import_s": import_s,
        "targets": target_lines,
        "sizes": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "smoke": arguments.smoke,
    }
    lines = [
        f"Seconds per image (median; warm-up excluded), {report['machine']}:",
        "",
        "| image | patches | focusnet | focusnet, onnxruntime | `paper` architecture | MeasureImageQuality blur "
        "| PowerLogLogSlope alone | paper / focusnet | same, network alone | TensorFlow / onnxruntime, network "
        "| focusnet / MIQ | TensorFlow memory: ready, peak | onnxruntime memory: ready, peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['patches']} | {r['focusnet_s']:.3f} | {r['onnx_s']:.3f} | "
                     f"{r['paper_arch_s']:.3f} | "
                     f"{r['measureimagequality_s']:.3f} | {r['plls_s']:.3f} | "
                     f"{r['paper_arch_s'] / r['focusnet_s']:.1f}x | "
                     f"{r['paper_network_s'] / r['focusnet_network_s']:.1f}x | "
                     f"{r['focusnet_network_s'] / r['onnx_network_s']:.2f} | "
                     f"{r['focusnet_s'] / r['measureimagequality_s']:.2f} | {r['focusnet_ready_mb']:.0f} MB, "
                     f"{r['focusnet_peak_mb']:.0f} MB | {r['onnx_ready_mb']:.0f} MB, {r['onnx_peak_mb']:.0f} MB |")
    lines += ["", f"Headless CellProfiler, `pipelines/measure_focus.cppipe` on 696 x 520 images: "
                  f"{throughput['steady_images_per_s']:.2f} images/s at steady state "
                  f"({throughput['whole_run_images_per_s']:.2f} images/s for a whole run of "
                  f"{2 * throughput['images']} images, start-up {throughput['startup_s']:.0f} s)."]
    lines += ["", f"A stack of {stack['planes']} planes of {stack['width']} x {stack['height']} in the library "
                  f"(`predict_stack`, model loaded, best of {stack['repeats']}): "
                  + ", ".join(f"{rate:.1f} planes/s with {runtime}" for runtime, rate in stack["planes_per_s"].items())
                  + "."]
    lines += ["", "Targets:", "", *(f"- {line}." for line in target_lines)]
    text = "\n".join(lines)
    print(text)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(report, indent=2) + "\n")
    if arguments.markdown:
        Path(arguments.markdown).write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
