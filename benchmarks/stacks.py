"""Throughput of `focusnet stack`: planes per second on a 40-plane through-focus stack.

A 40-plane stack (planes 2 um apart, focus at plane 17) is simulated from a 16-bit image
built of 84 x 84 tiles of real in-focus images, at 696 x 520 and 2048 x 2048 pixels per
plane, and written as an ImageJ TIFF. It is measured

* in the library (``predict_stack`` with the model already loaded: what a notebook or a
  batch of thousands of stacks sees per stack), best of three runs, and
* with the command line (``focusnet stack``, one process: Python start, model load, reading,
  CSVs), once.

Usage::

    python benchmarks/stacks.py [--json OUT.json] [--smoke]

``--smoke`` measures an 8-plane 260 x 348 stack once (a check that it runs).
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, best_seconds, in_focus_sources, tiled_image, write_zstack  # noqa: E402

FOCUS_PLANE = 17


def make_stack(path, planes, height, width):
    """Write a simulated through-focus stack (ImageJ TIFF) and return the plane of focus."""
    import numpy as np

    from focusnet.contract import NUM_LEVELS
    from focusnet.optics import Optics
    from focusnet.simulate import AS_IMAGED, blur_levels

    sources = in_focus_sources(held_out_only=False) or sorted((REPO / "examples" / "images").glob("BBBC006*"))
    image = tiled_image(height, width, sources).astype(float)
    focus = min(FOCUS_PLANE, planes // 2)
    blurred = blur_levels(image, range(NUM_LEVELS), Optics(defocus_phase="paraxial"))
    rng = np.random.default_rng(0)
    data = np.stack([AS_IMAGED.apply(blurred[min(abs(plane - focus), NUM_LEVELS - 1)], image.min(), rng)
                     for plane in range(planes)])
    write_zstack(path, data, 0.65, 2.0)
    return focus


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--smoke", action="store_true", help="one tiny stack, measured once")
    arguments = parser.parse_args()

    from focusnet.loader import load_model
    from focusnet.stacks import predict_stack

    sizes = [(8, 260, 348)] if arguments.smoke else [(40, 520, 696), (40, 2048, 2048)]
    repeats = 1 if arguments.smoke else 3
    model = load_model()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for planes, height, width in sizes:
            path = Path(scratch) / f"stack_{width}x{height}.tif"
            focus = make_stack(path, planes, height, width)
            predict_stack(path, model)  # warm-up: TensorFlow's first call builds the graph
            seconds = best_seconds(lambda path=path: predict_stack(path, model), repeats)
            (result,) = predict_stack(path, model)
            start = time.perf_counter()
            command = subprocess.run([sys.executable, "-m", "focusnet", "stack", str(path), "--csv",
                                      str(Path(scratch) / "planes.csv")], capture_output=True, text=True)
            command_seconds = time.perf_counter() - start
            if command.returncode != 0:
                sys.exit(f"focusnet stack failed: {command.stderr[-2000:]}")
            rows.append({"planes": planes, "height": height, "width": width, "best_plane": result.best_plane,
                         "true_focus": focus, "library_s": seconds,
                         "library_planes_per_s": planes / seconds, "command_s": command_seconds,
                         "command_planes_per_s": planes / command_seconds})
    report = {"machine": f"{platform.machine()}, {platform.python_version()}, "
                         f"{len(__import__('os').sched_getaffinity(0))} CPUs", "stacks": rows}
    print(f"focusnet stack throughput ({report['machine']}; shipped model):\n")
    print("| stack | best plane (true) | library: planes/s | command (incl. start-up): planes/s |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['planes']} x {row['width']} x {row['height']} | {row['best_plane']} ({row['true_focus']}) | "
              f"{row['library_planes_per_s']:.1f} ({row['library_s']:.2f} s) | "
              f"{row['command_planes_per_s']:.1f} ({row['command_s']:.1f} s) |")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
