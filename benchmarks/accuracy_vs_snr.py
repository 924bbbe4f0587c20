"""How the classifier's patch answers hold as light fades: accuracy against each patch's signal-to-noise.

Held-out in-focus images (never trained on) are defocused by the model's own simulator to every
level, scaled to a peak of 3 to 10^4 photons per pixel (:func:`focusnet.photons.photon_image`,
background 1/20 of the peak) and recorded by an sCMOS-like camera (gain 1, offset 100, read noise
1.5 e-). Every patch with content is then binned by its structure-to-noise ratio (the content
test's :func:`focusnet.content.structure_to_noise`, the quantity a "too noisy" rule would use), and per
bin the script reports:

* within one: the fraction of patches whose level is within one of the truth;
* confident misses: patches at true level >= 3 read level <= 1 with certainty >= 0.5 (the
  worst answer: a blurred patch called sharp).

Usage::

    python benchmarks/accuracy_vs_snr.py [--model MODEL] [--json OUT.json] [--plot OUT.png]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_focus_sources, machine  # noqa: E402

PEAKS = (3, 10, 30, 100, 300, 1000, 3000, 10000)
SNR_BINS = (0, 1, 2, 4, 8, 16, 32, 64, np.inf)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--json")
    parser.add_argument("--plot")
    arguments = parser.parse_args()

    from focusnet.content import structure_to_noise
    from focusnet.contract import LEVELS, PATCH_SIZE
    from focusnet.errors import UnmeasurableImageError
    from focusnet.images import read_image
    from focusnet.inference import model_optics, predict_image
    from focusnet.loader import load_model
    from focusnet.photons import Detector, photon_image
    from focusnet.simulate import blur_levels

    model = load_model(arguments.model)
    optics = model_optics(model)
    camera = Detector("camera", gain=1.0, offset=100.0, read_noise=1.5)
    rng = np.random.default_rng(0)
    records = []  # (true level, peak photons, snr, predicted level, certainty)
    sources = [p for p in in_focus_sources() if p.suffix.lower() in (".png", ".tif") and "BBBC006" in p.name]
    for path in sources:
        image = read_image(path).astype(np.float64)
        blurred = blur_levels(image, LEVELS, optics)
        for level, clean in zip(LEVELS, blurred):
            for peak in PEAKS:
                counts = camera.record(photon_image(clean, image.min(), peak, background_photons=peak / 20), rng)
                try:
                    prediction = predict_image(counts.astype(np.uint16), model)
                except UnmeasurableImageError:
                    continue
                regions = np.stack([counts[y:y + PATCH_SIZE, x:x + PATCH_SIZE] for y in prediction.y
                                    for x in prediction.x])
                snr, _ = structure_to_noise(regions)
                levels = prediction.probabilities.argmax(axis=-1).ravel()
                certainty = prediction.patch_certainty.ravel()
                for keep, ratio, predicted, sure in zip(prediction.has_content.ravel(), snr, levels, certainty):
                    if keep:
                        records.append((level, peak, float(ratio), int(predicted), float(sure)))
    data = np.array(records)
    rows, table = [], []
    for low, high in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        inside = (data[:, 2] >= low) & (data[:, 2] < high)
        if not inside.any():
            continue
        within = float(np.mean(np.abs(data[inside, 3] - data[inside, 0]) <= 1))
        blurred = inside & (data[:, 0] >= 3)
        misses = float(np.mean((data[blurred, 3] <= 1) & (data[blurred, 4] >= 0.5))) if blurred.any() else 0.0
        rows.append({"snr_low": low, "snr_high": None if np.isinf(high) else high, "patches": int(inside.sum()),
                     "within_one": within, "confident_misses": misses})
        table.append(f"| {low:g}-{'' if np.isinf(high) else f'{high:g}'} | {int(inside.sum())} | {within:.1%} | "
                     f"{misses:.1%} |")
    print(f"Patch answers against structure-to-noise ({machine()}; {len(sources)} held-out images, levels 0-10, "
          f"peaks {PEAKS[0]}-{PEAKS[-1]} photons):\n")
    print("| structure / noise | patches | within one level | confident misses (true >= 3 read <= 1) |")
    print("|---|---|---|---|")
    print("\n".join(table))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"machine": machine(), "model": str(arguments.model or "shipped"),
                                                    "peaks": PEAKS, "bins": rows}, indent=2) + "\n")
    if arguments.plot:
        from focusnet.figures import pyplot, save_figure

        plt = pyplot()
        figure, axis = plt.subplots(figsize=(6, 4))
        centres = [row["snr_low"] for row in rows]
        axis.plot(centres, [row["within_one"] for row in rows], marker="o", label="within one level")
        axis.plot(centres, [row["confident_misses"] for row in rows], marker="o",
                  label="confident misses (true >= 3 read <= 1)")
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("structure-to-noise ratio of the patch (bin's lower edge)")
        axis.set_ylabel("fraction of patches")
        axis.legend()
        figure.tight_layout()
        save_figure(figure, arguments.plot, dpi=100)


if __name__ == "__main__":
    main()
