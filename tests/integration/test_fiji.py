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


def test_the_fiji_script_uses_the_shared_arithmetic_not_a_copy():
    script = (REPO / "fiji" / "FocusQuality.groovy").read_text()
    assert "import focusnet.FocusArithmetic" in script
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
