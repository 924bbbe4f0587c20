"""The arithmetic around the network in Java, compiled with javac and checked against focusnet's Python.

``imagej/src/focusnet/FocusArithmetic.java`` holds everything the ImageJ plugin and the Fiji script
compute besides the network (patch placement, the content test, certainty, the whole-image
distribution): one copy, which the Fiji script imports from the plugin's jar. This test compiles that
very file and compares it with focusnet on the same images.
"""

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from focusnet import contract
from focusnet.content import (
    BLOCKS,
    HOT_PIXEL_SIGMAS,
    MIN_STRUCTURE_TO_NOISE,
    P_VALUE,
    ROW_STEP,
    TOO_NOISY_BELOW,
    content_from,
    judged_from,
    structure_to_noise,
)
from focusnet.images import read_image
from focusnet.inference import extract_patches, predict_image, tile_starts
from focusnet.photons import binomial_thinning, photon_transfer

ARITHMETIC = REPO / "imagej" / "src" / "focusnet" / "FocusArithmetic.java"
JAVAC = shutil.which("javac")
pytestmark = pytest.mark.skipif(JAVAC is None, reason="javac (a JDK, which CellProfiler's build needs) not found")

CHECK = """
import focusnet.FocusArithmetic;
import java.io.*;
import java.util.*;

public class FijiCheck {
    public static void main(String[] args) throws IOException {
        BufferedReader in = new BufferedReader(new FileReader(args[0]));
        PrintWriter out = new PrintWriter(new FileWriter(args[1]));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.trim().split(" ");
            if (f[0].equals("tiles")) {
                out.println(Arrays.toString(FocusArithmetic.tileStarts(Integer.parseInt(f[1]), FocusArithmetic.PATCH)));
            } else if (f[0].equals("patch")) {
                int size = FocusArithmetic.PATCH;
                double[] patch = new double[size * size];
                for (int i = 0; i < patch.length; i++) patch[i] = Double.parseDouble(f[i + 1]);
                out.println((FocusArithmetic.hasContent(patch, size) ? 1 : 0) + " "
                            + (FocusArithmetic.isJudged(patch, size) ? 1 : 0));
            } else if (f[0].equals("aggregate")) {
                int n = Integer.parseInt(f[1]);
                double[][] p = new double[n][FocusArithmetic.LEVELS];
                boolean[] content = new boolean[n];
                int k = 2;
                for (int i = 0; i < n; i++) {
                    content[i] = f[k++].equals("1");
                    for (int l = 0; l < FocusArithmetic.LEVELS; l++) p[i][l] = Double.parseDouble(f[k++]);
                }
                double[] d = FocusArithmetic.aggregate(p, content);
                StringBuilder s = new StringBuilder();
                for (double v : d) s.append(v).append(' ');
                s.append(FocusArithmetic.certainty(d)).append(' ').append(FocusArithmetic.argmax(d));
                out.println(s.toString().trim());
            }
        }
        out.close();
    }
}
"""


@pytest.fixture(scope="module")
def arithmetic(tmp_path_factory):
    """Compile the shared arithmetic; return a function running FijiCheck on input lines."""
    folder = tmp_path_factory.mktemp("fiji")
    (folder / "FijiCheck.java").write_text(CHECK)
    subprocess.run([JAVAC, "-d", str(folder), str(ARITHMETIC), str(folder / "FijiCheck.java")],
                   check=True, capture_output=True, timeout=300)
    java = shutil.which("java") or str(Path(JAVAC).parent / "java")

    def run(lines):
        (folder / "in.txt").write_text("\n".join(lines) + "\n")
        subprocess.run([java, "-cp", str(folder), "FijiCheck", str(folder / "in.txt"), str(folder / "out.txt")],
                       check=True, capture_output=True, timeout=300)
        return (folder / "out.txt").read_text().splitlines()

    return run


def test_the_fiji_script_uses_the_plugins_code_not_a_copy():
    script = (REPO / "fiji" / "FocusQuality.groovy").read_text()
    assert "import focusnet.FocusArithmetic" in script and "Measure_Focus.measureImage" in script
    assert "class FocusArithmetic" not in script and "static double structureToNoise" not in script


def constant(name):
    return re.search(rf"static final \w+ {name} = ([^;]+);", ARITHMETIC.read_text()).group(1)


def test_the_scripts_numbers_are_the_contracts():
    from scipy.stats import chi2

    assert int(constant("PATCH")) == contract.PATCH_SIZE and int(constant("LEVELS")) == contract.NUM_LEVELS
    assert float(constant("INPUT_SCALE")) == contract.INPUT_SCALE
    assert (int(constant("BLOCKS")), int(constant("ROW_STEP"))) == (BLOCKS, ROW_STEP)
    assert (float(constant("HOT_PIXEL_SIGMAS")), float(constant("MIN_STRUCTURE_TO_NOISE")),
            float(constant("TOO_NOISY_BELOW"))) == (HOT_PIXEL_SIGMAS, MIN_STRUCTURE_TO_NOISE, TOO_NOISY_BELOW)
    dof = BLOCKS * BLOCKS - 3
    assert float(constant("CHI2_THRESHOLD")) == pytest.approx(chi2.isf(P_VALUE, dof) / dof, rel=1e-12)


def test_patches_are_placed_as_focusnet_places_them(arithmetic):
    sizes = [84, 100, 167, 168, 520, 696, 2048]
    got = arithmetic([f"tiles {size}" for size in sizes])
    assert got == ["[" + ", ".join(str(int(start)) for start in tile_starts(size)) + "]" for size in sizes]


@pytest.fixture(scope="module")
def images(in_focus_paths, out_of_focus_paths):
    rng = np.random.default_rng(5)
    dark = (rng.poisson(12, (300, 400)) + 100).astype(np.uint16)
    hot = dark.copy()
    hot[50, 60] = 60000  # a hot pixel in an empty field: still no content
    sharp = read_image(in_focus_paths[0])
    gain, offset = photon_transfer(sharp)
    dim = binomial_thinning(sharp, 0.03, offset, gain, rng)  # content, some of it too noisy to judge
    return {"sharp": sharp, "sparse": read_image(in_focus_paths[1]), "blurred": read_image(out_of_focus_paths[0]),
            "dim": dim, "dark": dark, "dark with a hot pixel": hot}


def test_the_content_and_too_noisy_tests_agree_with_focusnet(arithmetic, images):
    lines, expected = [], []
    for image in images.values():
        ys, xs = tile_starts(image.shape[0]), tile_starts(image.shape[1])
        patches = extract_patches(image, [(y, x) for y in ys for x in xs]) * np.float32(contract.INPUT_SCALE)
        ratio, significant = structure_to_noise(patches)
        content = content_from(ratio, significant)
        expected += [f"{int(c)} {int(j)}" for c, j in zip(content, judged_from(content, ratio))]
        lines += ["patch " + " ".join(repr(float(v)) for v in patch.ravel()) for patch in patches]
    got = arithmetic(lines)
    assert got == expected
    assert {"0 0", "1 0", "1 1"} <= set(got)  # no content, too noisy and judged all occur


def test_the_whole_image_answer_agrees_with_focusnet(arithmetic, images, model):
    lines, expected = [], []
    for name, image in images.items():
        if name.startswith("dark"):
            continue
        prediction = predict_image(image, model)
        p = prediction.probabilities.reshape(-1, contract.NUM_LEVELS)
        content = prediction.judged_patches.ravel()
        lines.append(f"aggregate {len(p)} " + " ".join(f"{int(c)} " + " ".join(repr(float(v)) for v in row)
                                                      for c, row in zip(content, p)))
        expected.append(prediction)
    for line, prediction in zip(arithmetic(lines), expected):
        values = [float(v) for v in line.split()]
        np.testing.assert_allclose(values[:contract.NUM_LEVELS], prediction.distribution, atol=1e-12)
        assert values[contract.NUM_LEVELS] == pytest.approx(prediction.aggregate_certainty, abs=1e-12)
        assert int(values[-1]) == prediction.defocus_level
    # No content at all: NaN, as focusnet's NaN row.
    (line,) = arithmetic(["aggregate 1 0 " + " ".join(["0.1"] * contract.NUM_LEVELS)])
    assert all(math.isnan(float(v)) for v in line.split()[:contract.NUM_LEVELS])


def test_the_fiji_script_runs_and_gives_focusnets_numbers_with_a_stub_tensorflow(tmp_path):
    """The script's own code, run by Groovy with stubs for Fiji's TensorFlow service (tests/data/fiji_stubs).

    The stub runs the bundle's model with focusnet's Java network, fed and read as the script feeds and
    reads TensorFlow; the script's dialog parameters are set as Fiji would set them.
    """
    import csv
    import os

    groovy, ij_jar = shutil.which("groovy"), Path("/usr/share/java/ij.jar")
    if groovy is None or not ij_jar.is_file():
        pytest.skip("needs groovy and ImageJ (apt-get install groovy imagej)")
    from focusnet.contract import IMAGE_COLUMNS, SHIPPED_BUNDLE

    jar = REPO / "imagej" / "focusnet_.jar"
    stubs = tmp_path / "stubs"
    sources = sorted(str(path) for path in (REPO / "tests" / "data" / "fiji_stubs").rglob("*.java"))
    subprocess.run([JAVAC, "-cp", str(jar), "-d", str(stubs), *sources], check=True, capture_output=True, timeout=300)
    script = (REPO / "fiji" / "FocusQuality.groovy").read_text().splitlines()
    script = [line for line in script if not line.startswith("#@")]  # SciJava's parameters, set here instead
    last_import = max(index for index, line in enumerate(script) if line.startswith("import "))
    script[last_import + 1:last_import + 1] = [
        "bundle = new File(args[0]); folder = new File(args[1])",
        "pixelSize = 0d; countScale = 0d; aperture = 1.4d; immersion = 1.515d; wavelength = 0.52d; perPatch = true",
        "tensorFlowService = new stub.TensorFlowService()",
        "log = [warn: { message -> println('WARN ' + message) }]",
    ]
    (tmp_path / "FocusQuality.groovy").write_text("\n".join(script) + "\n")
    folder = tmp_path / "images"
    folder.mkdir()
    for image in sorted((REPO / "examples" / "images").glob("*.tif")):
        shutil.copy(image, folder / image.name)
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a TIFF")
    java_home = Path(os.path.realpath(JAVAC)).parent.parent
    environment = dict(os.environ, JAVA_HOME=str(java_home), JAVA_OPTS="-Djava.awt.headless=true")
    result = subprocess.run([groovy, "-cp", os.pathsep.join([str(stubs), str(jar), str(ij_jar)]),
                             str(tmp_path / "FocusQuality.groovy"), str(SHIPPED_BUNDLE), str(folder)],
                            capture_output=True, text=True, timeout=600, env=environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARN " in result.stdout and "broken.tif: cannot be read" in result.stdout
    with open(folder / "focusnet_results.csv", newline="") as handle:
        ours = {Path(row["image"]).name: row for row in csv.DictReader(handle)}
    assert ours["broken.tif"]["reason"] == "image format"
    cli = tmp_path / "cli.csv"
    subprocess.run([sys.executable, "-m", "focusnet", "predict", *map(str, sorted((REPO / "examples" / "images")
                                                                                  .glob("*.tif"))),
                    "--na", "1.4", "--refractive-index", "1.515", "--wavelength", "0.52", "--csv", str(cli)],
                   check=True, capture_output=True, timeout=600)
    with open(cli, newline="") as handle:
        for row in csv.DictReader(handle):
            mine = ours[Path(row["image"]).name]
            assert list(mine) == IMAGE_COLUMNS
            assert mine["defocus_level"] == row["defocus_level"]
            for column in ("aggregate_certainty", "mean_certainty", "defocus_um", "prob_0", "prob_10"):
                assert float(mine[column]) == pytest.approx(float(row[column]), abs=1e-4), column
    assert (folder / "focusnet_results_patches.csv").stat().st_size > 1000
