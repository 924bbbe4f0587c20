"""Peak memory of `focusnet predict` with an overlay, whatever the image size.

For 696 x 520, 8192 x 8192 and 20000 x 20000 pixel 16-bit images (built from 84 x 84 tiles of
real in-focus images, written as TIFF), one fresh process runs
``focusnet predict IMAGE --csv ... --patches-csv ... --overlay-dir ...`` and reports its peak
resident memory (``ru_maxrss``: Python, TensorFlow, the model, the image, and everything
measuring and drawing it took) and its wall time. Target: below 2 GB at 20000 x 20000.

Usage::

    python benchmarks/memory.py [--json OUT.json] [--smoke]

``--smoke`` measures one 696 x 520 image (a check that it runs).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, in_focus_sources, machine, report, tiled_image  # noqa: E402

MEASURE = """
import resource, sys
from focusnet.cli import main
status = main(sys.argv[1:])
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "STATUS", status)
"""
TARGET_MB = 2048


def peak_of_predict(image_path, out):
    """Peak resident memory (MB) and wall time (s) of one predict run with an overlay, in a fresh process."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, "predict", str(image_path), "--csv", str(out / "f.csv"),
                             "--patches-csv", str(out / "p.csv"), "--overlay-dir", str(out / "overlays")],
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    line = [text for text in result.stdout.splitlines() if text.startswith("PEAK_KB")]
    if result.returncode != 0 or not line or not line[0].endswith("STATUS 0"):
        sys.exit(f"predict failed on {image_path}: {result.stderr[-2000:]}")
    return int(line[0].split()[1]) / 1024, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--smoke", action="store_true", help="one small image")
    arguments = parser.parse_args()
    import tifffile

    sources = in_focus_sources(held_out_only=False) or sorted((REPO / "examples" / "images").glob("BBBC006*"))
    sizes = [(520, 696)] if arguments.smoke else [(520, 696), (8192, 8192), (20000, 20000)]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for height, width in sizes:
            path = Path(scratch) / f"image_{width}x{height}.tif"
            tifffile.imwrite(path, tiled_image(height, width, sources))
            out = Path(scratch) / f"out_{width}"
            out.mkdir()
            peak_mb, seconds = peak_of_predict(path, out)
            path.unlink()
            rows.append({"height": height, "width": width, "peak_mb": peak_mb, "seconds": seconds,
                         "overlay_bytes": sum(p.stat().st_size for p in (out / "overlays").iterdir())})
    data = {"machine": machine(), "target_mb": TARGET_MB, "images": rows}
    report(f"Peak memory of focusnet predict --patches-csv --overlay-dir, one image per fresh process "
           f"({data['machine']}; target: below {TARGET_MB} MB at 20000 x 20000):",
           ["image", "peak resident memory", "time"],
           [[f"{row['width']} x {row['height']}", f"{row['peak_mb']:.0f} MB", f"{row['seconds']:.1f} s"]
            for row in rows],
           arguments.json, data)

if __name__ == "__main__":
    main()
