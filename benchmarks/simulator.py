"""Print how long the defocus simulator takes (PSF set, blur, full series).

Usage: python benchmarks/simulator.py
"""

import sys
from pathlib import Path

from focusnet.contract import LEVELS
from focusnet.images import read_image
from focusnet.optics import Optics, _cached_kernels, psf_kernels
from focusnet.simulate import blur_levels, simulate_series

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_seconds  # noqa: E402

IMAGE = Path(__file__).resolve().parents[1] / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"


def main():
    psf_kernels()  # warm up imports

    def fresh_psf_set():
        _cached_kernels.cache_clear()
        psf_kernels(LEVELS, Optics())

    image = read_image(IMAGE)
    kernels = psf_kernels()
    print(f"PSF kernels, levels 0-10 (uncached): {median_seconds(fresh_psf_set, 5):.3f} s "
          f"({kernels.kernels.shape[1]} x {kernels.kernels.shape[2]} px each, "
          f"level-10 energy captured {kernels.captured_energy[-1]:.4%})")
    print(f"blur {image.shape[1]}x{image.shape[0]} image to 11 levels: "
          f"{median_seconds(lambda: blur_levels(image), 5):.3f} s")
    print(f"full series with noise: {median_seconds(lambda: simulate_series(image, seed=0), 5):.3f} s")


if __name__ == "__main__":
    main()
