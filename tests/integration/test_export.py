"""Bundles: export, Fiji's contract, the TF2 loader's refusals, and the real TF1 runtimes."""

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from focusnet import contract
from focusnet.bundle import ALLOWED_OPS, BundleError, load_bundle, zip_bundle_folder
from focusnet.classifier import sha256_bytes
from focusnet.contract import IMAGEJ_MODEL_FILE, INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from focusnet.export import export_bundle
from focusnet.images import read_image, write_tiff
from focusnet.inference import predict_image, tile_starts
from focusnet.loader import load_model

pytestmark = pytest.mark.tensorflow  # builds SavedModels; TF1 runtimes (also on the latest Python)

TF1_RUNTIMES = {"1.15": REPO / ".venv-tf1.15" / "bin" / "python", "1.12": REPO / ".venv-tf1.12" / "bin" / "python"}


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory):
    return export_bundle(None, tmp_path_factory.mktemp("bundle") / "focusnet.zip")


@pytest.fixture
def bundle_folder(tmp_path, bundle_zip):
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(bundle_zip) as archive:
        archive.extractall(folder)
    return folder


def saved_model(path):
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString(Path(path).read_bytes())
    return model


def test_zip_layout_is_what_fiji_unzips(bundle_zip):
    names = [entry.filename for entry in zipfile.ZipFile(bundle_zip).infolist()]
    assert "saved_model.pb" in names and "variables/" in names and "focusnet.json" in names
    assert all("/" not in name.rstrip("/") for name in names if not name.startswith("variables/"))  # root
    for index, name in enumerate(names):  # every folder entry precedes the files inside it
        if "/" in name.rstrip("/"):
            assert name.rsplit("/", 1)[0] + "/" in names[:index]


def test_manifest_describes_the_bundle(bundle_folder):
    manifest = json.loads((bundle_folder / "focusnet.json").read_text())
    assert manifest["format"] == "focusnet-bundle" and manifest["format_version"] == 1
    assert manifest["num_levels"] == 11 and manifest["patch_size"] == 84 and manifest["input_scale"] == 65535
    assert manifest["model_config"]["architecture"] == "default"
    assert "focusnet_version" in manifest
    files = {p.relative_to(bundle_folder).as_posix() for p in bundle_folder.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"focusnet.json"}
    for name, digest in manifest["files"].items():
        assert sha256_bytes((bundle_folder / name).read_bytes()) == digest


def test_graph_follows_fijis_contract(bundle_folder):
    model = saved_model(bundle_folder / "saved_model.pb")
    (meta_graph,) = model.meta_graphs
    assert list(meta_graph.meta_info_def.tags) == ["inference"]
    signature = meta_graph.signature_def["serving_default"]
    inputs, outputs = signature.inputs, signature.outputs
    assert set(inputs) == {"input"} and set(outputs) == {"probabilities", "patches"}
    assert inputs["input"].dtype == 1  # DT_FLOAT
    assert len(inputs["input"].tensor_shape.dim) == 2
    for tensor in list(inputs.values()) + list(outputs.values()):
        assert tensor.name.endswith(":0")
    names = {node.name for node in meta_graph.graph_def.node}
    assert {"input", "probabilities", "patches"} <= names
    assert {node.op for node in meta_graph.graph_def.node} <= ALLOWED_OPS


def test_round_trip_gives_the_same_predictions(bundle_zip, bundle_folder, in_focus_paths, out_of_focus_paths):
    folder_model = load_model()
    for bundle in (bundle_zip, bundle_folder):
        bundle_model = load_model(bundle)
        assert bundle_model.config == folder_model.config
        for path in (in_focus_paths[-1], out_of_focus_paths[0]):
            image = read_image(path)
            expected = predict_image(image, folder_model)
            got = predict_image(image, bundle_model)
            np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-6)
            assert got.defocus_level == expected.defocus_level


def test_cli_export_and_predict_with_a_bundle(tmp_path, in_focus_paths):
    out = tmp_path / "exported.zip"
    result = subprocess.run([sys.executable, "-m", "focusnet", "export", "--out", str(out)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Fiji.app/models/microscope-image-quality" in result.stdout
    image_folder = tmp_path / "images"
    image_folder.mkdir()
    write_tiff(image_folder / "a.tif", read_image(in_focus_paths[0]))
    table = tmp_path / "focus.csv"
    result = subprocess.run([sys.executable, "-m", "focusnet", "predict", str(image_folder), "--model", str(out),
                             "--csv", str(table)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(table, newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    expected = predict_image(read_image(image_folder / "a.tif"))
    assert float(row["aggregate_certainty"]) == pytest.approx(expected.aggregate_certainty, abs=1e-6)


def test_export_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("do not delete")
    with pytest.raises(ValueError, match="not a focusnet bundle: refusing to overwrite"):
        export_bundle(None, tmp_path / "precious")
    assert (tmp_path / "precious" / "thesis.txt").is_file()


# --- refusals ---------------------------------------------------------------------------------------------


def rewrite_manifest(folder, change):
    manifest = json.loads((folder / "focusnet.json").read_text())
    change(manifest)
    (folder / "focusnet.json").write_text(json.dumps(manifest))


def test_damaged_zip(tmp_path, bundle_zip):
    damaged = tmp_path / "damaged.zip"
    data = bytearray(bundle_zip.read_bytes())
    damaged.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(BundleError, match="damaged zip"):
        load_bundle(damaged)


def test_damaged_file_inside(tmp_path, bundle_folder):
    data = bytearray((bundle_folder / "saved_model.pb").read_bytes())
    data[len(data) // 3] ^= 0x01
    (bundle_folder / "saved_model.pb").write_bytes(bytes(data))
    zipped = zip_bundle_folder(bundle_folder, tmp_path / "bad.zip")
    with pytest.raises(BundleError, match="saved_model.pb is damaged or modified"):
        load_bundle(zipped)


def test_added_file_is_tampering(bundle_folder):
    (bundle_folder / "variables" / "extra.data").write_bytes(b"payload")
    with pytest.raises(BundleError, match="files differ from the manifest"):
        load_bundle(bundle_folder)


def test_unknown_format_version(bundle_folder):
    rewrite_manifest(bundle_folder, lambda m: m.update(format_version=7))
    with pytest.raises(BundleError, match="bundle format version 7 is not supported"):
        load_bundle(bundle_folder)


def test_missing_manifest(bundle_folder):
    (bundle_folder / "focusnet.json").unlink()
    with pytest.raises(BundleError, match="not a focusnet bundle"):
        load_bundle(bundle_folder)


def test_graph_with_file_ops_is_refused_even_with_matching_hashes(tmp_path, bundle_folder):
    """A tampered graph whose manifest was rewritten to match must still not run."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, [None, None], name="input")
        leak = tf.io.write_file(str(tmp_path / "pwned.txt"), tf.io.read_file("/etc/hostname"))
        with tf.control_dependencies([leak]):
            probabilities = tf.identity(tf.zeros([1, NUM_LEVELS]) + tf.reduce_mean(image), name="probabilities")
        patches = tf.identity(tf.zeros([1, PATCH_SIZE, PATCH_SIZE, 1]), name="patches")
        evil = tmp_path / "evil"
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(evil))
            signature = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={"input": image}, outputs={"probabilities": probabilities, "patches": patches})
            builder.add_meta_graph_and_variables(session, ["inference"],
                                                 signature_def_map={"serving_default": signature})
            builder.save()
    shutil.copy(evil / "saved_model.pb", bundle_folder / "saved_model.pb")
    digest = sha256_bytes((bundle_folder / "saved_model.pb").read_bytes())
    rewrite_manifest(bundle_folder, lambda m: m["files"].update({"saved_model.pb": digest}))
    with pytest.raises(BundleError, match="ops outside the classifier allow-list: .*ReadFile.*WriteFile"):
        model = load_bundle(bundle_folder)
        model.predict_patches(np.zeros((1, PATCH_SIZE, PATCH_SIZE)))
    assert not (tmp_path / "pwned.txt").exists()


def test_not_a_bundle(tmp_path):
    (tmp_path / "notes.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(BundleError):
        load_bundle(tmp_path / "notes.zip")
    with pytest.raises(BundleError, match="bundle not found"):
        load_bundle(tmp_path / "missing.zip")


# --- the real TensorFlow 1 runtimes (Fiji) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def predicted_patches(tmp_path_factory, in_focus_paths, out_of_focus_paths):
    """Two real images and the patch table ``focusnet predict`` writes for them (one run for both TF1 runtimes)."""
    images = [read_image(in_focus_paths[-1]), read_image(out_of_focus_paths[0])]
    folder = tmp_path_factory.mktemp("tf1_predict") / "images"
    folder.mkdir()
    for index, image in enumerate(images):
        write_tiff(folder / f"{index}.tif", image)
    patches_csv = folder.parent / "patches.csv"
    result = subprocess.run([sys.executable, "-m", "focusnet", "predict", str(folder), "--csv",
                             str(folder.parent / "images.csv"), "--patches-csv", str(patches_csv)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(patches_csv, newline="") as handle:
        return images, list(csv.DictReader(handle))


@pytest.mark.tf1
@pytest.mark.parametrize("version", sorted(TF1_RUNTIMES))
def test_tf1_runtime_reproduces_focusnet_predict(version, tmp_path, bundle_zip, predicted_patches):
    python = TF1_RUNTIMES[version]
    assert python.exists(), f"{python} missing: build it with 'make tf1-envs' (make test does)"
    images, rows = predicted_patches
    expected = np.array([[float(row[f"prob_{k}"]) for k in range(NUM_LEVELS)] for row in rows])

    # Fiji's mosaic: each image's tiles stitched in place order, the two images one above the other.
    mosaic_rows = []
    for image in images:
        ys, xs = tile_starts(image.shape[0]), tile_starts(image.shape[1])
        mosaic_rows += [np.concatenate([image[y:y + PATCH_SIZE, x:x + PATCH_SIZE] for x in xs], axis=1) for y in ys]
    mosaic = (np.concatenate(mosaic_rows, axis=0) / INPUT_SCALE).astype(np.float32)
    np.save(tmp_path / "mosaic.npy", mosaic)
    names = [contract.BUNDLE_TAG, contract.BUNDLE_SIGNATURE, contract.BUNDLE_INPUT_KEY, *contract.BUNDLE_OUTPUT_KEYS]
    result = subprocess.run([str(python), str(REPO / "tests" / "tf1_check.py"), str(bundle_zip),
                             str(tmp_path / "mosaic.npy"), str(tmp_path / "out.npz"), *names],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    output = np.load(tmp_path / "out.npz")
    assert str(output["tensorflow_version"]).startswith(version)
    assert output["probabilities"].shape == expected.shape == (96, NUM_LEVELS)
    # focusnet predict judges only patches with content that are not too noisy; those must match.
    judged = np.array([row["judged"] == "1" for row in rows])
    assert judged.sum() >= 48
    np.testing.assert_allclose(output["probabilities"][judged], expected[judged], atol=1e-4)
    # The bundle's own patches are the tiles, row-major.
    first_row = mosaic[:PATCH_SIZE].reshape(PATCH_SIZE, -1, PATCH_SIZE).transpose(1, 0, 2)
    np.testing.assert_array_equal(output["patches"][:first_row.shape[0], ..., 0], first_row)


def test_the_shipped_bundle_is_the_shipped_model(in_focus_paths):
    from focusnet.contract import SHIPPED_BUNDLE as DEFAULT_BUNDLE

    bundle = load_model(DEFAULT_BUNDLE)
    folder = load_model()
    assert bundle.config == folder.config, \
        "re-export: focusnet export --out focusnet/models/default-bundle.zip --overwrite"
    image = read_image(in_focus_paths[0])
    np.testing.assert_allclose(predict_image(image, bundle).probabilities, predict_image(image, folder).probabilities,
                               atol=1e-6)


def test_exporting_a_bundle_again_is_refused_clearly(tmp_path, bundle_zip):
    with pytest.raises(ValueError, match="already a bundle; export needs a model folder"):
        export_bundle(bundle_zip, tmp_path / "again.zip")


def test_a_loaded_bundle_changed_on_disk_is_checked_again(bundle_folder):
    assert load_bundle(bundle_folder) is load_bundle(bundle_folder)  # cached while unchanged
    (bundle_folder / "variables" / "late.data").write_bytes(b"added after loading")
    with pytest.raises(BundleError, match="files differ from the manifest"):
        load_bundle(bundle_folder)


@pytest.mark.fuzz
def test_every_single_byte_flip_loads_the_same_bundle_or_is_refused(bundle_zip, in_focus_image):
    """Fuzz: each byte of the zip flipped in turn; nothing but BundleError may escape the loader."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from helpers import flip_each_byte

    original = bundle_zip.read_bytes()
    # Every position, but for the ImageJ model's compressed weights (half the zip, opaque deflated base64
    # whose every change the zip CRC and the manifest's SHA-256 catch alike): every 16th byte there.
    with zipfile.ZipFile(bundle_zip) as archive:
        entry = archive.getinfo(IMAGEJ_MODEL_FILE)
    header = entry.header_offset  # the local header: 30 bytes, then the name and extra field it states
    data_start = header + 30 + int.from_bytes(original[header + 26:header + 28], "little") \
        + int.from_bytes(original[header + 28:header + 30], "little")
    data_end = data_start + entry.compress_size
    positions = [position for position in range(len(original))
                 if not data_start <= position < data_end or (position - data_start) % 16 == 0]
    # Shared among processes (spawned: this one has TensorFlow's threads running).
    workers = min(4, os.cpu_count() or 1)
    shares = [positions[first::workers] for first in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(flip_each_byte, [bundle_zip] * workers, shares))
    refused = sum(count for count, _ in results)
    loaded = sorted(flip for _, flips in results for flip in flips)
    # Loaded: only bytes zipfile does not read (times, attributes, comments) can differ, so every
    # file is the original's and the model predicts what the original does.
    for position, same_files in loaded:
        assert same_files, position
    assert refused + len(loaded) == len(positions) and refused > 0.9 * len(positions)
    if loaded:
        position = loaded[len(loaded) // 2][0]
        data = bytearray(original)
        data[position] ^= 0xFF
        variant = bundle_zip.parent / "variant.zip"
        variant.write_bytes(bytes(data))
        np.testing.assert_array_equal(predict_image(in_focus_image, load_bundle(variant)).probabilities,
                                      predict_image(in_focus_image, load_bundle(bundle_zip)).probabilities)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    import resource

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("saved_model.pb", "w", force_zip64=True) as entry:
            chunk = bytes(2**24)
            for _ in range(256):  # 4 GiB of zeros
                entry.write(chunk)
    assert bomb.stat().st_size < 10 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BundleError, match="declares 4096 MB of files.*refusing to inflate it"):
        load_bundle(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # kB: nothing inflated


@pytest.mark.parametrize("change", ["no model_config", "model_config not a dict", "files not a dict",
                                    "manifest is a list"])
def test_malformed_manifests_are_refused_clearly(bundle_folder, change):
    edits = {"no model_config": lambda m: m.pop("model_config"),
             "model_config not a dict": lambda m: m.update(model_config=["default"]),
             "files not a dict": lambda m: m.update(files=["saved_model.pb"])}
    if change == "manifest is a list":
        (bundle_folder / "focusnet.json").write_text("[1, 2]")
    else:
        rewrite_manifest(bundle_folder, edits[change])
    with pytest.raises(BundleError):
        load_bundle(bundle_folder)


def test_export_never_replaces_what_it_was_not_told_to(tmp_path, bundle_zip, capsys):
    from focusnet.cli import main

    target = tmp_path / "mine.zip"
    target.write_bytes(b"an older bundle")
    assert main(["export", "--out", str(target)]) == 1
    assert "refusing to overwrite it (--overwrite)" in capsys.readouterr().err
    assert target.read_bytes() == b"an older bundle"
    assert main(["export", "--out", str(target), "--overwrite"]) == 0
    assert load_bundle(target).config == load_bundle(bundle_zip).config
    assert main(["export", "--out", str(tmp_path / "missing" / "b.zip")]) == 1
    assert "does not exist; create it first" in capsys.readouterr().err


def test_an_unwritable_export_target_is_one_line(capsys):
    from focusnet.cli import main

    assert main(["export", "--out", "/proc/1/focusnet.zip"]) == 1  # refuses new files even to root
    err = capsys.readouterr().err.strip()
    assert err.startswith("focusnet export: error:") and "\n" not in err and "Traceback" not in err
