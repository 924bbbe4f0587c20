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
is focusnet's alone, in a fresh process: the resident size with TensorFlow, the model and the
image loaded, and the largest sampled while it measures the image.
Last, a headless CellProfiler run of ``pipelines/measure_focus.cppipe`` gives images per
second.

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
from common import (  # noqa: E402
    REPO,
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


def focusnet_memory(height, width):
    """Memory of focusnet alone measuring one image, in a fresh process (nothing else loaded).

    Returns ``{"ready_mb": ..., "peak_mb": ...}``: the resident size once TensorFlow, the
    model and the image are loaded (after one warm-up prediction on a small image), and the
    peak during the prediction of the whole image.
    """
    result = subprocess.run([sys.executable, __file__, "--memory-of", f"{height}x{width}"], check=True,
                            capture_output=True, text=True, timeout=1800)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_memory_here(size):
    """The child side of :func:`focusnet_memory`: prints one JSON line."""
    from focusnet.inference import predict_image
    from focusnet.loader import load_model

    height, width = (int(v) for v in size.split("x"))
    model = load_model()
    image = tiled_image(height, width, in_focus_sources())
    predict_image(image[:168, :168], model)
    with PeakMemory() as memory:
        predict_image(image, model)
    print(json.dumps({"ready_mb": memory.start_mb, "peak_mb": memory.peak_mb}))


def targets_line(reference) -> str:
    """The speed targets at the reference size, met or missed (docs/benchmarks.md renders the same)."""
    speedup = reference["paper_arch_s"] / reference["focusnet_s"]
    light = reference["focusnet_s"] / reference["onnx_s"]
    versus_miq = reference["focusnet_s"] / reference["measureimagequality_s"]
    return (f"Targets at {reference['size']}: focusnet >= 20x faster than the paper architecture: {speedup:.1f}x "
            f"({'met' if speedup >= 20 else 'missed'}); onnxruntime, the runtime without TensorFlow, at least as "
            f"fast as TensorFlow end to end: {light:.2f}x ({'met' if light >= 1 else 'missed'}); no slower than "
            f"MeasureImageQuality's blur features: {versus_miq:.2f} of its time "
            f"({'met' if versus_miq <= 1 else 'missed'}).")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--markdown", help="write the tables as Markdown")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat (a check that it runs)")
    parser.add_argument("--memory-of", metavar="HEIGHTxWIDTH", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory_of:
        return measure_memory_here(arguments.memory_of)

    from focusnet.contract import SHIPPED_ONNX
    from focusnet.inference import extract_patches, predict_image, tile_starts
    from focusnet.loader import load_model

    focusnet_model = load_model()
    onnx_model = load_model(SHIPPED_ONNX)
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
               **{f"focusnet_{key}": value for key, value in focusnet_memory(height, width).items()}}
        rows.append(row)
        print(f"{row['size']}: focusnet {row['focusnet_s']:.3f} s (onnxruntime {row['onnx_s']:.3f} s), "
              f"paper architecture {row['paper_arch_s']:.3f} s, "
              f"MeasureImageQuality blur {row['measureimagequality_s']:.3f} s, PowerLogLogSlope "
              f"{row['plls_s']:.3f} s; focusnet alone: {row['focusnet_ready_mb']:.0f} MB ready, peak "
              f"{row['focusnet_peak_mb']:.0f} MB", flush=True)
    throughput = cellprofiler_throughput(2 if arguments.smoke else 24, arguments.smoke)
    reference = next((r for r in rows if r["size"] == "2048x2048"), rows[-1])
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
        "sizes": rows,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "smoke": arguments.smoke,
    }
    lines = [
        f"Seconds per image (median; warm-up excluded), {report['machine']}:",
        "",
        "| image | patches | focusnet | focusnet, onnxruntime | `paper` architecture | MeasureImageQuality blur "
        "| PowerLogLogSlope alone | paper / focusnet | same, network alone | TensorFlow / onnxruntime, network "
        "| focusnet / MIQ | focusnet memory: ready, peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} | {r['patches']} | {r['focusnet_s']:.3f} | {r['onnx_s']:.3f} | "
                     f"{r['paper_arch_s']:.3f} | "
                     f"{r['measureimagequality_s']:.3f} | {r['plls_s']:.3f} | "
                     f"{r['paper_arch_s'] / r['focusnet_s']:.1f}x | "
                     f"{r['paper_network_s'] / r['focusnet_network_s']:.1f}x | "
                     f"{r['focusnet_network_s'] / r['onnx_network_s']:.2f} | "
                     f"{r['focusnet_s'] / r['measureimagequality_s']:.2f} | {r['focusnet_ready_mb']:.0f} MB, "
                     f"{r['focusnet_peak_mb']:.0f} MB |")
    lines += ["", f"Headless CellProfiler, `pipelines/measure_focus.cppipe` on 696 x 520 images: "
                  f"{throughput['steady_images_per_s']:.2f} images/s at steady state "
                  f"({throughput['whole_run_images_per_s']:.2f} images/s for a whole run of "
                  f"{2 * throughput['images']} images, start-up {throughput['startup_s']:.0f} s)."]
    lines += ["", targets_line(reference)]
    text = "\n".join(lines)
    print(text)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(report, indent=2) + "\n")
    if arguments.markdown:
        Path(arguments.markdown).write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
