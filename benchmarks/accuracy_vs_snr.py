"""How the classifier's patch answers hold as light fades, and the "too noisy" threshold that follows.

Held-out in-focus images (never trained on) are defocused by the model's own simulator to every
level, scaled to a peak of 2 to 10^4 photons per pixel over a background of 0.2-30 % of the peak
(:func:`focusnet.photons.photon_image`), and recorded by a random detector of each kind users have
(sCMOS/CCD camera, EMCCD, PMT: :func:`focusnet.photons.draw_detector`). Every patch with content is
measured without the too-noisy rule and binned by its structure-to-noise ratio (the content
test's :func:`focusnet.content.structure_to_noise`). Reported:

* per bin, all answers: the fraction within one level of the truth, and confident misses (true
  level >= 3 read <= 1 with certainty >= 0.5: a blurred patch called sharp);
* per bin and answer (the patch's most probable level L): the fraction of answers L within one
  level of the truth;
* the threshold: the lowest bin edge from which every bin keeps at least ``REQUIRED`` of the
  accuracy on bright patches (structure-to-noise >= ``BRIGHT``), all answers together. This is
  :data:`focusnet.content.TOO_NOISY_BELOW` for the model measured. (One number for every answer:
  per-answer thresholds would leave out some answers and bias an image's answer to the others.)

Usage::

    python benchmarks/accuracy_vs_snr.py [--model MODEL] [--json OUT.json] [--plot OUT.png] [--records OUT.npz]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_focus_sources, machine  # noqa: E402

PEAKS = (2, 3, 5, 10, 20, 30, 100, 300, 1000, 3000, 10000)
SNR_BINS = (1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32, np.inf)
#: Every bin from the threshold up keeps at least this share of the accuracy on bright patches.
REQUIRED = 0.9
#: Patches at least this far above their noise are "bright": their accuracy is the reference.
BRIGHT = 16


def threshold(true, predicted, snr):
    """The lowest SNR bin edge from which every bin keeps ``REQUIRED`` of the bright patches' accuracy."""
    hits = np.abs(true - predicted) <= 1
    reference = float(np.mean(hits[snr >= BRIGHT]))
    edge = SNR_BINS[0]
    for low, high in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        inside = (snr >= low) & (snr < high)
        if inside.any() and np.mean(hits[inside]) < REQUIRED * reference:
            edge = high  # a failing bin: the threshold is at least its upper edge
    return float(edge), reference


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--json")
    parser.add_argument("--plot")
    parser.add_argument("--records", help="also save every patch (true level, peak, ratio, answer, certainty), .npz")
    arguments = parser.parse_args()

    from focusnet.contract import LEVELS
    from focusnet.errors import UnmeasurableImageError
    from focusnet.images import read_image
    from focusnet.inference import model_optics, predict_image
    from focusnet.loader import load_model
    from focusnet.photons import BACKGROUND_FRACTION_RANGE, DETECTOR_KINDS, draw_detector, photon_image
    from focusnet.simulate import blur_levels

    model = load_model(arguments.model)
    optics = model_optics(model)
    rng = np.random.default_rng(0)
    records = []  # (true level, peak photons, snr, predicted level, certainty)
    sources = in_focus_sources()
    for path in sources:
        image = read_image(path).astype(np.float64)
        blurred = blur_levels(image, LEVELS, optics)
        for level, clean in zip(LEVELS, blurred):
            for peak in PEAKS:
                for kind in DETECTOR_KINDS:
                    background = peak * np.exp(rng.uniform(*np.log(BACKGROUND_FRACTION_RANGE)))
                    photons = photon_image(clean, image.min(), peak, background_photons=background)
                    detector = draw_detector(rng, kind, float(photons.max()))
                    counts = detector.record(photons, rng).astype(np.uint16)
                    try:
                        prediction = predict_image(counts, model, judge_noise=False)
                    except UnmeasurableImageError:
                        continue
                    keep = prediction.has_content.ravel()
                    snr = prediction.structure_to_noise.ravel()[keep]
                    predicted = prediction.probabilities.argmax(axis=-1).ravel()[keep]
                    certainty = prediction.patch_certainty.ravel()[keep]
                    records.extend(zip([level] * len(snr), [peak] * len(snr), snr, predicted, certainty))
    data = np.array(records, dtype=np.float64)
    if arguments.records:
        np.savez_compressed(arguments.records, patches=data)
    true, snr, predicted, certainty = data[:, 0], data[:, 2], data[:, 3].astype(int), data[:, 4]
    rows, table = [], []
    for low, high in zip(SNR_BINS[:-1], SNR_BINS[1:]):
        inside = (snr >= low) & (snr < high)
        if not inside.any():
            continue
        within = float(np.mean(np.abs(predicted[inside] - true[inside]) <= 1))
        blurred = inside & (true >= 3)
        misses = float(np.mean((predicted[blurred] <= 1) & (certainty[blurred] >= 0.5))) if blurred.any() else 0.0
        by_answer = {}
        for level in LEVELS:
            answered = inside & (predicted == level)
            by_answer[str(level)] = {"patches": int(answered.sum()), "within_one": float(
                np.mean(np.abs(true[answered] - level) <= 1)) if answered.any() else None}
        rows.append({"snr_low": low, "snr_high": None if np.isinf(high) else high, "patches": int(inside.sum()),
                     "within_one": within, "confident_misses": misses, "by_answer": by_answer})
        answers = " | ".join("" if by_answer[str(level)]["patches"] < 30
                             else f"{by_answer[str(level)]['within_one']:.0%}" for level in LEVELS)
        table.append(f"| {low:g}-{'' if np.isinf(high) else f'{high:g}'} | {int(inside.sum())} | {within:.1%} | "
                     f"{misses:.1%} | {answers} |")
    needed, reference = threshold(true, predicted, snr)
    print(f"Patch answers against structure-to-noise ({machine()}; {len(sources)} held-out images, levels 0-10, "
          f"peaks {PEAKS[0]}-{PEAKS[-1]} photons, detectors {', '.join(DETECTOR_KINDS)}):\n")
    print("| structure / noise | patches | within one level | confident misses (true >= 3 read <= 1) | "
          + " | ".join(f"answer {level}" for level in LEVELS) + " |")
    print("|---|---|---|---|" + "---|" * len(LEVELS))
    print("\n".join(table))
    print(f"\nbright patches (structure-to-noise >= {BRIGHT}): {reference:.1%} within one level; too noisy below "
          f"{needed:g} (every bin from there up keeps >= {REQUIRED:.0%} of that)")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({
            "machine": machine(), "model": str(arguments.model or "shipped"), "peaks": PEAKS,
            "detectors": list(DETECTOR_KINDS), "images": [p.name for p in sources], "required": REQUIRED,
            "bright": BRIGHT, "bright_within_one": reference, "bins": rows,
            "too_noisy_below": needed}, indent=2) + "\n")
    if arguments.plot:
        from focusnet.figures import pyplot, save_figure

        plt = pyplot()
        figure, axis = plt.subplots(figsize=(7, 4.5))
        lows = [row["snr_low"] for row in rows]
        axis.plot(lows, [row["within_one"] for row in rows], marker="o", color="black", label="all answers")
        for level, colour in ((0, "tab:green"), (2, "tab:olive"), (5, "tab:orange"), (10, "tab:purple")):
            points = [(row["snr_low"], row["by_answer"][str(level)]["within_one"]) for row in rows
                      if row["by_answer"][str(level)]["patches"] >= 30]
            if points:
                axis.plot(*zip(*points), marker=".", color=colour, linewidth=0.8, label=f"answers of level {level}")
        axis.axvline(needed, color="black", linestyle=":", label=f"too noisy below {needed:g}")
        axis.plot(lows, [row["confident_misses"] for row in rows], marker="x", color="tab:red",
                  label="confident misses (true >= 3 read <= 1)")
        axis.axhline(REQUIRED * reference, color="grey", linestyle="--", linewidth=1,
                     label=f"{REQUIRED:.0%} of the bright patches' accuracy")
        axis.set_xscale("log")
        axis.set_xlabel("structure-to-noise ratio of the patch (bin's lower edge)")
        axis.set_ylabel("fraction of patches within one level")
        axis.legend(fontsize=8)
        figure.tight_layout()
        save_figure(figure, arguments.plot, dpi=100)


if __name__ == "__main__":
    main()
