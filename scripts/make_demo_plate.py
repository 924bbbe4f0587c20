"""Write a 96-well demo plate (2 sites per well, MetaXpress names) from the repository's real images.

Most sites are copies of the three sharp BBBC006 images, about 6 % (and D05/D06 site 2) of the
two out-of-focus MCF-7 images. docs/stacks-and-plates.md draws its plate map from it::

    python scripts/make_demo_plate.py demo-output/plate/images
    focusnet predict demo-output/plate/images --csv demo-output/plate/focus.csv
    focusnet plate demo-output/plate/focus.csv --out demo-output/plate/map
"""

import argparse
from pathlib import Path

import numpy as np

from focusnet.images import read_image, write_tiff

REPO = Path(__file__).resolve().parents[1]
SHARP = ["examples/images/BBBC006_z_aligned__a07__s1__w1_10.tif",
         "tests/data/images/BBBC006_z_aligned__a01__s1__w1_10.tif",
         "tests/data/images/BBBC006_z_aligned__a02__s1__w1_10.tif"]
BLURRED = ["examples/images/MCF7_out_of_focus_a19_s2.tif", "tests/data/images/MCF7_out_of_focus_a01_s1.tif"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder for the 192 images")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    sharp = [read_image(REPO / path) for path in SHARP]
    blurred = [read_image(REPO / path) for path in BLURRED]
    rng = np.random.default_rng(0)
    for row in "ABCDEFGH":
        for col in range(1, 13):
            for site in (1, 2):
                image = blurred[rng.integers(2)] if rng.random() < 0.06 else sharp[rng.integers(3)]
                if (row, col) in {("D", 5), ("D", 6)} and site == 2:
                    image = blurred[0]
                write_tiff(out / f"demo_{row}{col:02d}_s{site}_w1.tif", image)
    print(f"96 wells x 2 sites written to {out}")


if __name__ == "__main__":
    main()
