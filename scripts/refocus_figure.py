#!/usr/bin/env python3
"""Draw docs/images/refocus_example.png: a real in-focus image defocused by the simulator, refocused.

Rows: levels 2, 4 and 6 of a crop of the held-out example image
(examples/images/BBBC006_z_aligned__a07__s1__w1_10.tif, never trained on), defocused with
the shipped refocus model's optics and Poisson noise. Columns: the defocused input, focusnet's
refocused image, Richardson-Lucy (30 iterations) with the true distance, and the in-focus
image. Each panel's title gives the classifier's level and the PSNR against the in-focus image.

Usage::

    python scripts/refocus_figure.py [OUT.png]
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = REPO / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"
LEVELS = (2, 4, 6)
CROP = (slice(150, 350), slice(250, 500))


def main(out=REPO / "docs" / "images" / "refocus_example.png"):
    from focusnet.figures import save_montage
    from focusnet.images import read_image
    from focusnet.inference import predict_image
    from focusnet.loader import load_model
    from focusnet.refocus.model import load_refocus_model
    from focusnet.refocus.restore import refocus_image
    from focusnet.refocus.validate import quality, richardson_lucy
    from focusnet.simulate import UINT16_MAX, blur_levels, degrade

    model, classifier = load_refocus_model(), load_model()
    image = read_image(IMAGE)
    reference = blur_levels(image, [0], model.optics)[0]
    panels, titles = [], []
    for level in LEVELS:
        defocused = degrade(image, level, optics=model.optics, seed=level)
        result = refocus_image(defocused, model, classifier, force=True)
        deconvolved = richardson_lucy(defocused, level * model.optics.z_step_um, model.optics, float(image.min()))
        for name, picture in (("input", defocused), ("refocused", result.image),
                              ("Richardson-Lucy, true distance", deconvolved), ("in focus", reference)):
            level_read = predict_image(picture.clip(0, UINT16_MAX).astype("uint16"), classifier).defocus_level
            psnr = "" if name == "in focus" else f", {quality(picture, reference)['psnr']:.1f} dB"
            panels.append(picture[CROP])
            titles.append(f"level {level} {name}: reads {level_read}{psnr}" if name == "input" else
                          f"{name}: reads {level_read}{psnr}")
    save_montage(panels, titles, out, suptitle="Simulated defocus of a held-out real image, refocused", columns=4)
    print(f"written: {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
