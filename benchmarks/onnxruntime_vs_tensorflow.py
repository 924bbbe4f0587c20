"""onnxruntime against TensorFlow for the shipped model: time per 2048 x 2048 image, import time, memory.

Each backend runs in a fresh process on the same 2048 x 2048 16-bit image (84 x 84 tiles of real
in-focus images): the time to import its runtime, then the shipped model (the folder with
TensorFlow, ``default.onnx`` with onnxruntime) measures the image once to warm up and five times
timed (median), and the process's peak resident memory is read. Probabilities of the two are
compared (largest difference).

Usage::

    python benchmarks/onnxruntime_vs_tensorflow.py [--json OUT.json] [--smoke]

``--smoke`` uses a 520 x 696 image and one timed call.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, in_focus_sources, machine, report, tiled_image  # noqa: E402

MEASURE = """
import json, resource, statistics, sys, time
import numpy as np
backend, image_path, repeats, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
if backend == "tensorflow":
    import tensorflow
else:
    import onnxruntime
import_s = time.perf_counter() - start
from focusnet.contract import SHIPPED_MODEL_DIR, SHIPPED_ONNX
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model
model = load_model(SHIPPED_MODEL_DIR if backend == "tensorflow" else SHIPPED_ONNX)
image = read_image(image_path)
prediction = predict_image(image, model)
times = []
for _ in range(repeats):
    start = time.perf_counter()
    predict_image(image, model)
    times.append(time.perf_counter() - start)
np.save(out, prediction.probabilities)
print(json.dumps({"import_s": import_s, "seconds_per_image": statistics.median(times),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--smoke", action="store_true", help="a small image, one timed call")
    arguments = parser.parse_args()
    import numpy as np
    import tifffile

    height, width = (520, 696) if arguments.smoke else (2048, 2048)
    repeats = 1 if arguments.smoke else 5
    sources = in_focus_sources(held_out_only=False) or sorted((REPO / "examples" / "images").glob("BBBC006*"))
    rows, probabilities = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "image.tif"
        tifffile.imwrite(image, tiled_image(height, width, sources))
        for backend in ("tensorflow", "onnxruntime"):
            out = Path(scratch) / f"{backend}.npy"
            result = subprocess.run([sys.executable, "-c", MEASURE, backend, str(image), str(repeats), str(out)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"{backend} failed: {result.stderr[-2000:]}")
            rows.append({"backend": backend, **json.loads(result.stdout.strip().splitlines()[-1])})
            probabilities[backend] = np.load(out)
    difference = float(np.abs(probabilities["tensorflow"] - probabilities["onnxruntime"]).max())
    data = {"machine": machine(), "image": f"{width} x {height}", "max_probability_difference": difference,
            "backends": rows}
    report(f"The shipped model on one {width} x {height} image, each backend in a fresh process ({data['machine']}); "
           f"largest probability difference {difference:.1e}",
           ["backend", "import", "time per image", "peak memory", "TensorFlow loaded"],
           [[row["backend"], f"{row['import_s']:.2f} s", f"{row['seconds_per_image']:.3f} s",
             f"{row['peak_mb']:.0f} MB", "yes" if row["tensorflow_imported"] else "no"] for row in rows],
           arguments.json, data)


if __name__ == "__main__":
    main()
