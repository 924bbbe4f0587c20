"""Images per second of `focusnet predict` in one process and on a local Dask cluster of 1 and 2 workers.

100 images of 696 x 520 pixels (84 x 84 tiles of real in-focus images, as in the speed benchmark)
are measured by the command line, start-up included, with ``--patches-csv``: in one process, then
``--workers 1`` and ``--workers 2``. The tables of every run are checked to be identical.

Usage::

    python benchmarks/cluster.py [--json OUT.json] [--smoke]

``--smoke`` measures 6 images with one and two workers (a check that it runs).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, in_focus_sources, machine, report, tiled_image  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--smoke", action="store_true", help="6 images")
    arguments = parser.parse_args()
    import tifffile

    count = 6 if arguments.smoke else 100
    sources = in_focus_sources(held_out_only=False) or sorted((REPO / "examples" / "images").glob("BBBC006*"))
    rows, tables = [], set()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        folder.mkdir()
        for index in range(count):
            tifffile.imwrite(folder / f"img_{index:03d}.tif", tiled_image(520, 696, sources, seed=index))
        for label, extra in (("one process", []), ("--workers 1", ["--workers", "1"]),
                             ("--workers 2", ["--workers", "2"])):
            out = Path(scratch) / label.replace(" ", "_")
            out.mkdir()
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "focusnet", "predict", str(folder), "--csv",
                                     str(out / "f.csv"), "--patches-csv", str(out / "p.csv"), *extra],
                                    capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"{label} failed: {result.stderr[-2000:]}")
            tables.add((out / "f.csv").read_bytes() + (out / "p.csv").read_bytes())
            rows.append({"run": label, "images": count, "seconds": seconds, "images_per_s": count / seconds})
    data = {"machine": machine(), "identical_tables": len(tables) == 1, "runs": rows}
    report(f"focusnet predict, {count} images of 696 x 520, start-up included ({data['machine']}); tables "
           f"identical across runs: {data['identical_tables']}", ["run", "time", "images/s"],
           [[row["run"], f"{row['seconds']:.1f} s", f"{row['images_per_s']:.1f}"] for row in rows],
           arguments.json, data)
    if len(tables) != 1:
        sys.exit("the runs wrote different tables")


if __name__ == "__main__":
    main()
