"""Speed and memory of refocusing, beside 30 iterations of Richardson-Lucy, on this machine.

For a 696 x 520 and a 2048 x 2048 pixel 16-bit image (real in-focus tiles, defocused by the
simulator to level 3 of the shipped refocus model's optics), reports the median seconds of

* the refocus network alone (:func:`focusnet.refocus.restore.restore_counts`: normalise, the
  ONNX graph with onnxruntime, back to counts), and
* :func:`focusnet.refocus_image` end to end (the classifier before and after included),
* Richardson-Lucy deconvolution (scikit-image, 30 iterations, focusnet's PSF of that level),

and the peak resident memory of one ``refocus_image`` of each size in a fresh process.
Targets (issue "Refocus"): a 2048 x 2048 image in at most 2 s, and faster than Richardson-Lucy.

Usage::

    python benchmarks/refocus.py [--json OUT.json] [--repeats N]
"""

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import call_seconds, in_focus_sources, machine, report, tiled_image  # noqa: E402

SIZES = ((520, 696), (2048, 2048))
LEVEL = 3
PEAK = """
import resource, sys, numpy as np
from focusnet.refocus.restore import refocus_image
image = np.load(sys.argv[1])
refocus_image(image, force=True)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def median_time(function, repeats):
    return float(np.median(call_seconds(function, repeats)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    import tempfile

    from focusnet.loader import load_model
    from focusnet.refocus.model import load_refocus_model
    from focusnet.refocus.restore import refocus_image, restore_counts
    from focusnet.refocus.validate import richardson_lucy
    from focusnet.simulate import degrade

    model, classifier = load_refocus_model(), load_model()
    sources = in_focus_sources()
    rows, data = [], {"machine": machine(), "level": LEVEL, "rl_iterations": 30, "sizes": {}}
    for height, width in SIZES:
        sharp = tiled_image(height, width, sources)
        image = degrade(sharp, LEVEL, optics=model.optics, seed=0)
        restore_counts(image, model)  # builds the session
        network = median_time(lambda image=image: restore_counts(image, model), arguments.repeats)
        end_to_end = median_time(lambda image=image: refocus_image(image, model, classifier, force=True),
                                 arguments.repeats)
        deconvolution = median_time(lambda image=image: richardson_lucy(
            image, LEVEL * model.optics.z_step_um, model.optics, float(image.min())), 1)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "image.npy"
            np.save(path, image)
            result = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True)
        line = [text for text in result.stdout.splitlines() if text.startswith("PEAK_KB")]
        peak_mb = int(line[0].split()[1]) / 1024 if line else float("nan")
        name = f"{width} x {height}"
        data["sizes"][name] = {"network_s": network, "refocus_image_s": end_to_end, "richardson_lucy_s": deconvolution,
                               "peak_mb": peak_mb}
        rows.append([name, f"{network:.2f} s", f"{end_to_end:.2f} s", f"{deconvolution:.1f} s",
                     f"{deconvolution / end_to_end:.0f}x", f"{peak_mb:.0f} MB"])
    report(f"Refocusing one image ({data['machine']}; level {LEVEL}; Richardson-Lucy: 30 iterations):",
           ["image", "network", "refocus_image (classifier before and after)", "Richardson-Lucy",
            "refocus_image faster by", "peak memory (refocus_image, fresh process)"], rows, arguments.json, data)


if __name__ == "__main__":
    main()
