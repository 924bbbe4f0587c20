"""The ImageJ plugin's Java engine against focusnet in Python (TensorFlow and onnxruntime), same images, same run.

The same 16-bit TIFFs (84 x 84 tiles of real in-focus images, 696 x 520 and 2048 x 2048) are measured

* by the Java engine (``imagej/focusnet_.jar``, ``focusnet.Benchmark``: the shipped model inside the jar
  loaded once; each image's first run, then 30 warm-up runs, then the best of ``--repeats``; as many
  threads as CPUs), in a JVM started once for all images. The first run of the first image includes
  the JIT compiling the engine; every later image of a folder or stack gets the warm figure;
* by ``predict_image`` with the shipped model folder (TensorFlow) and ``default.onnx`` (onnxruntime),
  best of ``--repeats`` after a warm-up.

Reported: seconds per image and the Java engine's time over onnxruntime's (the issue's target: at most
3x). Needs ImageJ's ``ij.jar`` (``apt-get install imagej``) and a JDK.

Usage::

    python benchmarks/imagej_engine.py [--json OUT.json] [--repeats N] [--smoke]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, best_seconds, in_focus_sources, machine, report, tiled_image  # noqa: E402

IJ_JAR = Path("/usr/share/java/ij.jar")
JAR = REPO / "imagej" / "focusnet_.jar"
TARGET_RATIO = 3.0


def java_seconds(paths, repeats):
    """Seconds per image of the Java engine, in one JVM: {name: (first run, best warm run)}."""
    threads = len(os.sched_getaffinity(0))
    result = subprocess.run(["java", "-Djava.awt.headless=true", "-cp", f"{IJ_JAR}{os.pathsep}{JAR}",
                             "focusnet.Benchmark", str(repeats), str(threads), *map(str, paths)],
                            capture_output=True, text=True, check=True, timeout=3600)
    times = {}
    for line in result.stdout.strip().splitlines():
        path, first, best = line.rsplit(" ", 2)
        times[Path(path).name] = (float(first), float(best))
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one small image, once")
    arguments = parser.parse_args()

    import tifffile

    from focusnet.contract import SHIPPED_MODEL_DIR, SHIPPED_ONNX
    from focusnet.inference import predict_image
    from focusnet.loader import load_model

    sizes = ((168, 252),) if arguments.smoke else ((520, 696), (2048, 2048))
    repeats = 1 if arguments.smoke else arguments.repeats
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        images = {}
        for height, width in sizes:
            path = Path(scratch) / f"{width}x{height}.tif"
            images[path] = tiled_image(height, width, in_focus_sources())
            tifffile.imwrite(path, images[path])
        java = java_seconds(list(images), repeats)
        models = {"tensorflow": load_model(SHIPPED_MODEL_DIR), "onnxruntime": load_model(SHIPPED_ONNX)}
        for path, image in images.items():
            row = {"image": path.stem, "java_first_s": java[path.name][0], "java_s": java[path.name][1]}
            for runtime, model in models.items():
                predict_image(image, model)  # warm-up
                row[f"{runtime}_s"] = best_seconds(lambda image=image, model=model: predict_image(image, model),
                                                   repeats)
            row["java_over_onnxruntime"] = row["java_s"] / row["onnxruntime_s"]
            rows.append(row)
    data = {"machine": machine(), "repeats": repeats, "target_ratio": TARGET_RATIO, "rows": rows}
    report(f"Seconds per image, best of {repeats} ({data['machine']}; shipped model):",
           ["image", "Java engine (ImageJ plugin)", "its first run", "onnxruntime", "TensorFlow", "Java / onnxruntime"],
           [[row["image"], f"{row['java_s']:.3f}", f"{row['java_first_s']:.3f}", f"{row['onnxruntime_s']:.3f}",
             f"{row['tensorflow_s']:.3f}", f"{row['java_over_onnxruntime']:.1f}x"] for row in rows],
           arguments.json, data)
    worst = max(row["java_over_onnxruntime"] for row in rows)
    print(f"\nTarget: the Java engine at most {TARGET_RATIO:g}x onnxruntime's time per image: {worst:.1f}x "
          f"({'met' if worst <= TARGET_RATIO else 'missed'}).")


if __name__ == "__main__":
    main()
