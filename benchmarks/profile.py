"""Where the time of one image goes, per stage, with each runtime (TensorFlow, onnxruntime).

The same 16-bit TIFFs (84 x 84 tiles of real in-focus images, 696 x 520 and 2048 x 2048) are
read and measured by ``predict_image`` with the shipped model: the folder with TensorFlow and
``default.onnx`` with onnxruntime, each in its own process. After one warm-up, ``--repeats``
runs are profiled with cProfile, and each stage is the cumulative time of the function that does
it (so the stages are the code's own, not a copy of it):

* read: ``focusnet.images.read_image`` (the file);
* counts: ``focusnet.inference.to_counts`` (type checks, NaN/range checks);
* patches: ``focusnet.inference.extract_patches`` (cut and scale, batch by batch);
* network: ``PatchClassifier.predict_patches`` (the runtime);
* content test: ``focusnet.content.structure_to_noise`` (noise, hot pixels, block structure);
* aggregation: ``focusnet.inference.aggregate`` (certainties, distribution, micrometres);
* other: the rest of ``predict_image`` (positions, bookkeeping).

Resampling does not run: the images are at the model's pixel size.

Usage::

    python benchmarks/profile.py [--json OUT.json] [--repeats N] [--smoke]

``--smoke`` profiles one 168 x 252 image once with each runtime (used by ``make test``).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_focus_sources, machine, tiled_image  # noqa: E402

#: Stage name -> (file suffix, function name) as cProfile names them.
STAGES = {
    "read": ("focusnet/images.py", "read_image"),
    "counts": ("focusnet/inference.py", "to_counts"),
    "patches": ("focusnet/inference.py", "extract_patches"),
    "network": ("focusnet/classifier.py", "predict_patches"),
    "content test": ("focusnet/content.py", "structure_to_noise"),
    "aggregation": ("focusnet/inference.py", "aggregate"),
}

PROFILE = """
import cProfile, json, pstats, sys
from focusnet.contract import SHIPPED_MODEL_DIR, SHIPPED_ONNX
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model

backend, image, repeats, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
stages = json.loads(sys.argv[5])
model = load_model(SHIPPED_MODEL_DIR if backend == "tensorflow" else SHIPPED_ONNX)


def measure():
    return predict_image(read_image(image), model)


measure()  # warm-up: the runtime's first call builds its session or graph
profile = cProfile.Profile()
profile.enable()
for _ in range(repeats):
    measure()
profile.disable()
statistics = pstats.Stats(profile).stats
total = sum(cumulative for (path, _, name), (_, _, _, cumulative, _) in statistics.items()
            if name in ("read_image", "predict_image") and path.endswith(("focusnet/images.py",
                                                                          "focusnet/inference.py")))
seconds = {stage: sum(cumulative for (path, _, name), (_, _, _, cumulative, _) in statistics.items()
                      if name == function and path.endswith(suffix)) / repeats
           for stage, (suffix, function) in stages.items()}
seconds["other"] = total / repeats - sum(seconds.values())
with open(out, "w") as handle:
    json.dump({"total": total / repeats, "stages": seconds}, handle)
"""


def profile(backend, image, repeats, scratch) -> dict:
    out = Path(scratch) / f"{backend}.json"
    subprocess.run([sys.executable, "-c", PROFILE, backend, str(image), str(repeats), str(out),
                    json.dumps(STAGES)], check=True)
    return json.loads(out.read_text())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--smoke", action="store_true")
    arguments = parser.parse_args()

    import tifffile

    sizes = ((168, 252),) if arguments.smoke else ((520, 696), (2048, 2048))
    repeats = 1 if arguments.smoke else arguments.repeats
    sources = in_focus_sources()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for height, width in sizes:
            image = Path(scratch) / f"{width}x{height}.tif"
            tifffile.imwrite(image, tiled_image(height, width, sources))
            for backend in ("tensorflow", "onnxruntime"):
                rows.append({"image": f"{width}x{height}", "backend": backend,
                             **profile(backend, image, repeats, scratch)})
    stages = list(STAGES) + ["other"]
    print(f"Seconds per image by stage (mean of {repeats} profiled runs after a warm-up; {machine()})\n")
    print("| image | runtime | total | " + " | ".join(stages) + " | around the network |")
    print("|---|---|---|" + "---|" * len(stages) + "---|")
    for row in rows:
        around = 1 - row["stages"]["network"] / row["total"]
        print(f"| {row['image']} | {row['backend']} | {row['total']:.4f} | "
              + " | ".join(f"{row['stages'][stage]:.4f}" for stage in stages) + f" | {around:.0%} |")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"machine": machine(), "repeats": repeats, "rows": rows},
                                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
