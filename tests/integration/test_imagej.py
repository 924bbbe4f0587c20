"""The ImageJ plugin (imagej/focusnet_.jar) inside a real ImageJ 1.x, in batch mode under Xvfb.

Each test writes an ImageJ macro that opens images and calls ``run("Measure Focus", ...)`` as a user's
macro would, runs ``java -jar ij.jar -batch`` with the committed jar in the plugins folder, and compares
the CSV the plugin saves with ``focusnet predict``'s on the same files (levels identical, probabilities
and certainties within 1e-4). ImageJ 1's ``-batch`` needs AWT (its menus), hence Xvfb.
"""

import base64
import csv
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import EXAMPLES, REPO
from focusnet.contract import IMAGE_COLUMNS, PATCH_COLUMNS, SHIPPED_BUNDLE

IJ_JAR = Path("/usr/share/java/ij.jar")
JAR = REPO / "imagej" / "focusnet_.jar"
TOLERANCE = 1e-4
MISSING = [what for what, found in (("ImageJ (apt-get install imagej)", IJ_JAR.is_file()),
                                     ("javac (apt-get install default-jdk)", shutil.which("javac")),
                                     ("xvfb-run (apt-get install xvfb)", shutil.which("xvfb-run")))
           if not found]
pytestmark = pytest.mark.skipif(bool(MISSING), reason="needs " + ", ".join(MISSING) + " (make test installs them "
                                                      "with apt-get when run as root)")


def run_imagej(tmp_path, macro, jar=JAR):
    """Run an ImageJ macro in batch mode with the plugin installed; return ImageJ's output."""
    home = tmp_path / "imagej"
    (home / "plugins").mkdir(parents=True, exist_ok=True)
    shutil.copy(jar, home / "plugins" / "focusnet_.jar")
    (tmp_path / "macro.ijm").write_text(macro)
    result = subprocess.run(["xvfb-run", "-a", "java", f"-Dplugins.dir={home}", "-jar", str(IJ_JAR), "-ijpath",
                             str(home), "-batch", str(tmp_path / "macro.ijm")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def measure_macro(csv_path, images=(), folder="", bundle="", pixel=0, count=0, patches=False, optics=(0, 0, 0)):
    lines = [f'open("{image}");' for image in images]
    na, index, wavelength = optics
    lines.append(f'run("Measure Focus", "bundle=[{bundle}] folder=[{folder}] pixel={pixel} count={count} na={na} '
                 f'immersion={index} wavelength={wavelength} save=[{csv_path}]{" list" if patches else ""}");')
    return "\n".join(lines) + "\n"


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def focusnet_predict(tmp_path, paths, *options):
    out = tmp_path / "predict.csv"
    result = subprocess.run([sys.executable, "-m", "focusnet", "predict", *map(str, paths), "--csv", str(out),
                             *options], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return read_rows(out)


def assert_rows_agree(ours, theirs, columns=IMAGE_COLUMNS):
    assert list(ours) == columns
    for column in columns:
        mine, cli = ours[column], theirs[column]
        if column in ("image", "pixel_size_source", "reason"):
            if column != "image":
                assert mine == cli, (column, mine, cli)
            continue
        if cli == "nan":
            assert mine == "nan", column
        elif column in ("defocus_level", "patches", "defocus_um_lower_bound", "row", "col", "y", "x", "size", "content",
                        "judged"):
            assert float(mine) == float(cli), column
        elif column == "structure_to_noise":  # float32 block sums in focusnet, float64 in Java
            assert float(mine) == pytest.approx(float(cli), rel=TOLERANCE), column
        else:
            assert float(mine) == pytest.approx(float(cli), abs=TOLERANCE), column


def test_the_committed_jar_is_built_from_its_sources(tmp_path):
    rebuilt = tmp_path / "focusnet_.jar"
    subprocess.run(["bash", str(REPO / "scripts" / "build-imagej-plugin.sh"), str(rebuilt)], check=True,
                   capture_output=True, timeout=600)
    with zipfile.ZipFile(JAR) as committed, zipfile.ZipFile(rebuilt) as fresh:
        assert committed.namelist() == fresh.namelist()
        for name in committed.namelist():
            assert committed.read(name) == fresh.read(name), f"{name} differs: run scripts/build-imagej-plugin.sh"
        # The jar holds the shipped model as the shipped bundle has it, and says its version.
        with zipfile.ZipFile(SHIPPED_BUNDLE) as bundle:
            for name in ("focusnet.json", "imagej-model.properties"):
                assert committed.read(f"focusnet/default-bundle/{name}") == bundle.read(name)
        assert b"Implementation-Version: 0.1.0" in committed.read("META-INF/MANIFEST.MF")


def test_the_example_images_give_focusnet_predicts_numbers(tmp_path):
    images = sorted(EXAMPLES.glob("*.tif"))
    run_imagej(tmp_path, "\n".join(measure_macro(tmp_path / f"{i}.csv", [image]) + "close();"
                                   for i, image in enumerate(images)))
    expected = focusnet_predict(tmp_path, images)
    for index, row in enumerate(expected):
        (ours,) = read_rows(tmp_path / f"{index}.csv")
        assert ours["image"] == Path(row["image"]).name
        assert_rows_agree(ours, row)


@pytest.mark.parametrize("pixel_size", [0.65, 0.5])
def test_the_patch_table_is_focusnet_predicts_patches_csv(tmp_path, pixel_size):
    image = EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif"
    run_imagej(tmp_path, measure_macro(tmp_path / "focus.csv", [image], pixel=pixel_size, patches=True))
    ours = read_rows(tmp_path / "focus_patches.csv")
    subprocess.run([sys.executable, "-m", "focusnet", "predict", str(image), "--pixel-size", str(pixel_size),
                    "--csv", str(tmp_path / "cli.csv"), "--patches-csv", str(tmp_path / "cli_patches.csv")],
                   check=True, capture_output=True, timeout=600)
    theirs = read_rows(tmp_path / "cli_patches.csv")
    assert len(ours) == len(theirs) > 0
    for mine, cli in zip(ours, theirs):
        assert_rows_agree(mine, cli, PATCH_COLUMNS)
    assert {row["judged"] for row in ours} == {"0", "1"}  # judged and not judged patches both compared


@pytest.mark.parametrize("optics", [(1.4, 1.515, 0.52), (0.8, 1.0, 0.6)])
def test_defocus_in_micrometres_for_the_users_objective_is_focusnets(tmp_path, optics):
    image = EXAMPLES / "MCF7_out_of_focus_a19_s2.tif"
    run_imagej(tmp_path, measure_macro(tmp_path / "focus.csv", [image], optics=optics, patches=True))
    na, index, wavelength = optics
    options = ["--na", str(na), "--refractive-index", str(index), "--wavelength", str(wavelength)]
    (ours,) = read_rows(tmp_path / "focus.csv")
    theirs = focusnet_predict(tmp_path, [image], *options)[0]
    assert_rows_agree(ours, theirs)
    assert float(ours["defocus_um"]) == pytest.approx(float(theirs["defocus_um"]), rel=1e-5)
    subprocess.run([sys.executable, "-m", "focusnet", "predict", str(image), *options, "--patches-csv",
                    str(tmp_path / "cli_patches.csv"), "--csv", str(tmp_path / "cli.csv")], check=True,
                   capture_output=True, timeout=600)
    for mine, cli in zip(read_rows(tmp_path / "focus_patches.csv"), read_rows(tmp_path / "cli_patches.csv")):
        assert_rows_agree(mine, cli, PATCH_COLUMNS)


def test_8_bit_32_bit_and_calibrated_images_follow_the_clis_rules(tmp_path):
    """8-, 32-bit and calibrated images (square pixels and not) measured as focusnet predict measures them."""
    image = tifffile.imread(EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif")
    eight = (image // 16).clip(0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "eight.tif", eight)
    tifffile.imwrite(tmp_path / "float.tif", (image / 65535).astype(np.float32))
    tifffile.imwrite(tmp_path / "calibrated.tif", image, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"unit": "um"})
    # Pixels that are not square: focusnet takes the mean of width and height.
    tifffile.imwrite(tmp_path / "oblong.tif", image, imagej=True, resolution=(1 / 0.7, 1 / 0.6),
                     metadata={"unit": "um"})
    macro = (measure_macro(tmp_path / "eight.csv", [tmp_path / "eight.tif"]) + "close();\n"
             + measure_macro(tmp_path / "float.csv", [tmp_path / "float.tif"], count=65535) + "close();\n"
             + measure_macro(tmp_path / "float_no_count.csv", [tmp_path / "float.tif"]) + "close();\n"
             + measure_macro(tmp_path / "calibrated.csv", [tmp_path / "calibrated.tif"]) + "close();\n"
             + measure_macro(tmp_path / "oblong.csv", [tmp_path / "oblong.tif"]) + "close();\n")
    output = run_imagej(tmp_path, macro)
    assert_rows_agree(read_rows(tmp_path / "eight.csv")[0], focusnet_predict(tmp_path, [tmp_path / "eight.tif"])[0])
    assert_rows_agree(read_rows(tmp_path / "float.csv")[0],
                      focusnet_predict(tmp_path, [tmp_path / "float.tif"], "--scale", "65535")[0])
    (refused,) = read_rows(tmp_path / "float_no_count.csv")
    assert refused["reason"] == "image format" and refused["defocus_level"] == "nan"
    assert "floating-point pixels need an explicit scale" in output
    (calibrated,) = read_rows(tmp_path / "calibrated.csv")
    assert calibrated["pixel_size_source"] == "file" and float(calibrated["pixel_size_um"]) == pytest.approx(0.65)
    assert_rows_agree(calibrated, focusnet_predict(tmp_path, [tmp_path / "calibrated.tif"])[0])
    (oblong,) = read_rows(tmp_path / "oblong.csv")
    assert float(oblong["pixel_size_um"]) == pytest.approx(0.65)
    assert_rows_agree(oblong, focusnet_predict(tmp_path, [tmp_path / "oblong.tif"])[0])


@pytest.mark.parametrize("pixel_size", [0.325, 0.5, 0.8])
def test_calibrated_images_are_resampled_to_the_models_pixels_as_focusnet_does(tmp_path, pixel_size):
    image = tifffile.imread(EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif")
    if pixel_size < 0.5:  # enough pixels to keep patches after shrinking
        image = np.tile(image, (2, 2))
    path = tmp_path / "calibrated.tif"
    tifffile.imwrite(path, image, imagej=True, resolution=(1 / pixel_size, 1 / pixel_size), metadata={"unit": "um"})
    tifffile.imwrite(tmp_path / "plain.tif", image)
    run_imagej(tmp_path, measure_macro(tmp_path / "calibrated.csv", [path]) + "close();\n"
               + measure_macro(tmp_path / "given.csv", [tmp_path / "plain.tif"], pixel=pixel_size))
    (ours,), (given,) = read_rows(tmp_path / "calibrated.csv"), read_rows(tmp_path / "given.csv")
    assert ours["pixel_size_source"] == "file" and given["pixel_size_source"] == "given"
    assert_rows_agree(ours, focusnet_predict(tmp_path, [path])[0])
    assert_rows_agree(given, focusnet_predict(tmp_path, [tmp_path / "plain.tif"], "--pixel-size", str(pixel_size))[0])


def test_a_stack_gives_one_row_per_plane(tmp_path):
    image = tifffile.imread(EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif")
    planes = np.stack([image, image[::-1], np.full_like(image, 7)])
    tifffile.imwrite(tmp_path / "stack.tif", planes, imagej=True, metadata={"axes": "ZYX"})
    for index, plane in enumerate(planes):
        tifffile.imwrite(tmp_path / f"plane{index}.tif", plane)
    run_imagej(tmp_path, measure_macro(tmp_path / "stack.csv", [tmp_path / "stack.tif"]))
    rows = read_rows(tmp_path / "stack.csv")
    assert [row["image"] for row in rows] == [f"stack.tif plane {index}" for index in range(3)]
    expected = focusnet_predict(tmp_path, [tmp_path / f"plane{index}.tif" for index in range(3)])
    for ours, theirs in zip(rows, expected):
        assert_rows_agree(ours, theirs)
    assert rows[2]["reason"] == "unmeasurable"  # the constant plane


def test_a_folder_with_a_broken_file_gives_it_a_row_with_the_reason_and_goes_on(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for image in EXAMPLES.glob("*.tif"):
        shutil.copy(image, folder / image.name)
    (folder / "broken.tif").write_bytes(b"II*\x00 not really a TIFF")
    output = run_imagej(tmp_path, measure_macro(tmp_path / "folder.csv", folder=folder))
    rows = {Path(row["image"]).name: row for row in read_rows(tmp_path / "folder.csv")}
    assert sorted(rows) == sorted(["broken.tif", *(image.name for image in EXAMPLES.glob("*.tif"))])
    assert rows["broken.tif"]["reason"] == "image format" and "broken.tif: cannot be read" in output
    expected = {Path(row["image"]).name: row for row in focusnet_predict(tmp_path, sorted(EXAMPLES.glob("*.tif")))}
    for name, row in expected.items():
        assert_rows_agree(rows[name], row)


def test_a_tampered_bundle_is_refused_and_a_bundle_file_is_used_as_given(tmp_path):
    bundle = tmp_path / "bundle.zip"
    shutil.copy(SHIPPED_BUNDLE, bundle)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(SHIPPED_BUNDLE) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "imagej-model.properties":
                data = data.replace(b"pixel_size_um=0.65", b"pixel_size_um=0.33")
            target.writestr(item, data)
    image = EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif"
    output = run_imagej(tmp_path, measure_macro(tmp_path / "given.csv", [image], bundle=bundle)
                        + measure_macro(tmp_path / "tampered.csv", [image], bundle=tampered))
    assert_rows_agree(read_rows(tmp_path / "given.csv")[0], focusnet_predict(tmp_path, [image])[0])
    assert "imagej-model.properties is damaged or modified" in output
    assert not (tmp_path / "tampered.csv").exists()


def test_the_overlay_shows_the_patches_in_focusnets_colours(tmp_path):
    import os

    from focusnet.figures import level_colours

    folder = Path(os.environ.get("FOCUSNET_SCREENSHOT_DIR") or tmp_path)
    shot = folder / "imagej_overlay.png"
    image = EXAMPLES / "MCF7_out_of_focus_a19_s2.tif"
    run_imagej(tmp_path, measure_macro(tmp_path / "focus.csv", [image])
               + f'run("Enhance Contrast", "saturated=0.35");\nrun("Flatten");\nsaveAs("PNG", "{shot}");\n')
    import imageio.v2 as imageio

    rgb = imageio.imread(shot)[..., :3]
    (row,) = read_rows(tmp_path / "focus.csv")
    # The out-of-focus image's patches are drawn in the colour of their levels (magenta-ish at level 10).
    colour = np.round(255 * level_colours(int(row["defocus_level"]), 1.0)).astype(int)
    assert (np.abs(rgb.astype(int) - colour).sum(axis=-1) < 60).sum() > 500


def test_the_speed_benchmark_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "imagej_engine.py"), "--smoke", "--json",
                             str(tmp_path / "imagej.json")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Java / onnxruntime" in result.stdout


NETWORK_HARNESS = """
import focusnet.Network;
import java.io.FileInputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Properties;

public class RunNetwork {
    public static void main(String[] args) throws Exception {
        Properties model = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) { model.load(in); }
        Network network = new Network(model);
        int size = network.patchSize();
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(Paths.get(args[1]))).order(ByteOrder.LITTLE_ENDIAN);
        float[][] patches = new float[bytes.capacity() / 4 / (size * size)][size * size];
        for (float[] patch : patches) for (int i = 0; i < patch.length; i++) patch[i] = bytes.getFloat();
        for (double[] row : network.predict(patches, Integer.parseInt(args[2]))) {
            StringBuilder line = new StringBuilder();
            for (double p : row) line.append(p).append(' ');
            System.out.println(line.toString().trim());
        }
    }
}
"""


def run_network(tmp_path, threads=1):
    """The Java network of tmp_path/model.properties on the patches in tmp_path/patches.f32."""
    (tmp_path / "RunNetwork.java").write_text(NETWORK_HARNESS)
    classpath = f"{IJ_JAR}:{JAR}:{tmp_path}"
    subprocess.run(["javac", "-cp", classpath, "-d", str(tmp_path), str(tmp_path / "RunNetwork.java")], check=True)
    return subprocess.run(["java", "-cp", classpath, "RunNetwork", str(tmp_path / "model.properties"),
                           str(tmp_path / "patches.f32"), str(threads)], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_java_network_is_tensorflows_for_any_strides_and_kernel_sizes(tmp_path, threads):
    """The Java forward pass against TensorFlow's (focusnet.network.inference_graph) on a network of other
    shapes than the shipped one: stride 1 and 3, even and 1 x 1 kernels, sizes that strides do not divide."""
    from focusnet.contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
    from focusnet.network import Architecture, ConvSpec, inference_graph

    architecture = Architecture("shapes", (ConvSpec(3, 5, stride=1), ConvSpec(4, 6, stride=3), ConvSpec(2, 7, stride=2),
                                           ConvSpec(1, 8, stride=1), ConvSpec(5, 9, stride=2)), "global_average")
    rng = np.random.default_rng(7)
    weights, lines, channels = {}, [f"patch_size={PATCH_SIZE}", f"num_levels={NUM_LEVELS}",
                                    f"input_scale={INPUT_SCALE!r}", "head=global_average"], 1
    for index, conv in enumerate(architecture.convs):
        shape = (conv.kernel, conv.kernel, channels, conv.filters)
        weights[f"conv{index}/kernel"] = rng.normal(0, 1 / np.sqrt(conv.kernel ** 2 * channels), shape).astype("<f4")
        weights[f"conv{index}/bias"] = rng.normal(0, .1, conv.filters).astype("<f4")
        lines.append(f"conv{index}.stride={conv.stride}")
        channels = conv.filters
    weights["levels/kernel"] = rng.normal(0, 1, (channels, NUM_LEVELS)).astype("<f4")
    weights["levels/bias"] = rng.normal(0, .1, NUM_LEVELS).astype("<f4")
    for name, value in weights.items():
        key = name.replace("/", ".")
        lines += [f"{key}.shape={','.join(map(str, value.shape))}",
                  f"{key}={base64.b64encode(value.tobytes()).decode('ascii')}"]
    (tmp_path / "model.properties").write_text("\n".join(lines) + "\n")
    # 37 patches: batches of two sizes in each thread. Smooth structure plus noise; whole and fractional counts.
    y, x = np.mgrid[:PATCH_SIZE, :PATCH_SIZE]
    patches = np.stack([1000 + 800 * np.sin(x / (3 + k) + k) * np.cos(y / (5 + k % 4)) + rng.poisson(50, x.shape)
                        for k in range(37)]).astype("<f4")
    patches[::2] += 0.25
    patches.tofile(tmp_path / "patches.f32")
    result = run_network(tmp_path, threads)
    assert result.returncode == 0, result.stderr[-3000:]
    java = np.array([[float(value) for value in line.split()] for line in result.stdout.strip().splitlines()])
    expected = inference_graph(patches[..., None] / np.float32(INPUT_SCALE), weights, architecture).numpy()
    assert java.shape == expected.shape
    assert np.abs(java - expected).max() < TOLERANCE
    assert expected.max(axis=1).min() < 0.9, "the test network should not be certain of everything"


@pytest.mark.parametrize(("entry", "value", "message"), [("conv0.stride", "0", "conv0.stride is 0"),
                                                         ("conv0.kernel.shape", "0,0,1,4", "conv0.kernel has shape")])
def test_a_model_with_an_impossible_stride_or_kernel_is_refused_by_name(tmp_path, entry, value, message):
    lines = ["patch_size=84", "num_levels=11", "input_scale=65535.0", "head=global_average", "conv0.stride=2",
             "conv0.kernel.shape=3,3,1,4", "conv0.kernel=" + base64.b64encode(np.ones(36, "<f4").tobytes()).decode(),
             "conv0.bias.shape=4", "conv0.bias=" + base64.b64encode(np.zeros(4, "<f4").tobytes()).decode()]
    lines = [f"{entry}={value}" if line.startswith(entry + "=") else line for line in lines]
    (tmp_path / "model.properties").write_text("\n".join(lines) + "\n")
    np.zeros((1, 84, 84), "<f4").tofile(tmp_path / "patches.f32")
    result = run_network(tmp_path)
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_a_save_path_that_is_not_a_csv_is_refused_and_the_image_is_untouched(tmp_path):
    image = tmp_path / "image.tif"
    shutil.copy(EXAMPLES / "BBBC006_z_aligned__a07__s1__w1_10.tif", image)
    before = image.read_bytes()
    output = run_imagej(tmp_path, measure_macro(image, [image]))
    assert "give a path that ends in .csv" in output
    assert image.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_file()) == ["image.tif", "macro.ijm"]
