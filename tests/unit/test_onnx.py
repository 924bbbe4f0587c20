"""ONNX: export, onnxruntime parity with TensorFlow, the loader's refusals, and measuring without TensorFlow."""

import csv
import json

import numpy as np
import pytest

from focusnet.contract import SHIPPED_ONNX
from focusnet.errors import ModelError
from focusnet.images import read_image
from focusnet.inference import predict_image
from focusnet.loader import load_model
from helpers import RUNTIME_PATCH_TOLERANCE

onnx = pytest.importorskip("onnx", reason="onnx and onnxruntime are part of the test environments")
pytest.importorskip("onnxruntime", reason="onnx and onnxruntime are part of the test environments")

from focusnet.classifier import onnx_manifest_sha256  # noqa: E402
from focusnet.contract import ONNX_MANIFEST_KEY  # noqa: E402
from focusnet.onnxmodel import ALLOWED_ONNX_OPS, load_onnx  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from focusnet.export.onnxexport import export_onnx

    return export_onnx(None, tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_the_graph_uses_only_allowed_ops_at_a_current_opset(exported):
    proto = onnx.load(exported)
    assert {node.op_type for node in proto.graph.node} <= ALLOWED_ONNX_OPS and "Log1p" not in str(proto.graph)
    assert proto.opset_import[0].version >= 17
    manifest = json.loads({p.key: p.value for p in proto.metadata_props}[ONNX_MANIFEST_KEY])
    assert manifest["model_config"] == load_model().config
    assert manifest["sha256"] == onnx_manifest_sha256(proto, manifest["model_config"])


@pytest.mark.parametrize("model", ["exported", "shipped"])
def test_onnxruntime_matches_tensorflow_on_real_images(model, exported, in_focus_paths, out_of_focus_paths):
    onnx_model = load_model(exported if model == "exported" else SHIPPED_ONNX)
    tensorflow_model = load_model()
    for path in list(in_focus_paths) + list(out_of_focus_paths):
        image = read_image(path)
        expected, got = predict_image(image, tensorflow_model), predict_image(image, onnx_model)
        np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=RUNTIME_PATCH_TOLERANCE,
                                   err_msg=str(path))
        np.testing.assert_allclose(got.distribution, expected.distribution, atol=1e-5, err_msg=str(path))
        assert got.defocus_level == expected.defocus_level


def test_the_shipped_onnx_is_the_shipped_model():
    assert load_onnx(SHIPPED_ONNX).config == load_model().config, \
        "re-export: focusnet export --format onnx --out focusnet/models/default.onnx --overwrite"


def _rewrite(path, out, change, keep_hash=False, change_manifest=None):
    proto = onnx.load(path)
    change(proto)
    properties = {p.key: p.value for p in proto.metadata_props}
    manifest = json.loads(properties[ONNX_MANIFEST_KEY])
    if change_manifest is not None:
        change_manifest(manifest)
    if keep_hash:  # an attacker who also rewrites the manifest
        manifest["sha256"] = onnx_manifest_sha256(proto, manifest["model_config"])
    onnx.helper.set_model_props(proto, {ONNX_MANIFEST_KEY: json.dumps(manifest)})
    out.write_bytes(proto.SerializeToString())
    return out


def test_a_modified_graph_is_refused(exported, tmp_path):
    def scale_weights(proto):
        proto.graph.initializer[-1].raw_data = bytes(len(proto.graph.initializer[-1].raw_data))

    with pytest.raises(ModelError, match="damaged or modified"):
        load_onnx(_rewrite(exported, tmp_path / "changed.onnx", scale_weights))


def test_ops_outside_the_allow_list_are_refused_even_with_a_matching_hash(exported, tmp_path):
    def add_custom_op(proto):
        last = proto.graph.node[-1]
        proto.graph.node.append(onnx.helper.make_node("ReadFile", ["patches"], ["secret"], domain="com.evil"))
        assert last.output[0] == "probabilities"

    with pytest.raises(ModelError, match=r"outside the classifier allow-list.*com\.evil:ReadFile"):
        load_onnx(_rewrite(exported, tmp_path / "evil.onnx", add_custom_op, keep_hash=True))


@pytest.mark.parametrize("damage", ["truncated", "not onnx", "no manifest"])
def test_damaged_or_foreign_files_are_refused(exported, tmp_path, damage):
    path = tmp_path / "bad.onnx"
    data = exported.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "not onnx":
        path.write_bytes(b"GIF89a not a model")
    else:
        proto = onnx.load(exported)
        del proto.metadata_props[:]
        path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError):
        load_onnx(path)


def test_the_command_line_exports_and_measures_with_onnx(tmp_path, in_focus_paths):
    from focusnet.cli import main

    out = tmp_path / "m.onnx"
    assert main(["export", "--format", "onnx", "--out", str(out)]) == 0
    assert main(["export", "--format", "onnx", "--out", str(out)]) == 1  # exists: needs --overwrite
    assert main(["predict", str(in_focus_paths[0]), "--model", str(out), "--csv", str(tmp_path / "f.csv")]) == 0
    with open(tmp_path / "f.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    expected = predict_image(read_image(in_focus_paths[0]), load_model())
    assert float(row["aggregate_certainty"]) == pytest.approx(expected.aggregate_certainty, abs=1e-5)


def _unchanged(proto):
    pass


def test_a_changed_setting_in_the_manifest_is_refused(exported, tmp_path):
    # The pixel size moves a calibrated image between levels: it is inside what the hash protects.
    def finer_pixels(manifest):
        manifest["model_config"]["simulator"]["optics"]["pixel_size_um"] = 0.2

    with pytest.raises(ModelError, match="settings are damaged or modified"):
        load_onnx(_rewrite(exported, tmp_path / "pixels.onnx", _unchanged, change_manifest=finer_pixels))


def test_an_earlier_format_is_refused_with_how_to_export_again(exported, tmp_path):
    def version_1(manifest):
        manifest["format_version"] = 1

    with pytest.raises(ModelError, match="export it again"):
        load_onnx(_rewrite(exported, tmp_path / "old.onnx", _unchanged, keep_hash=True, change_manifest=version_1))


def _opset_999(proto):
    proto.opset_import[0].version = 999


def _ir_version_99(proto):
    proto.ir_version = 99


def _huge_input(proto):
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 2 ** 40


def _external_weights(proto):
    tensor = proto.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"


@pytest.mark.parametrize("change, message", [
    (_opset_999, "onnxruntime cannot load"), (_ir_version_99, "onnxruntime cannot load"),
    (_huge_input, "shapes"), (_external_weights, "outside the model"),
])
def test_models_that_pass_the_hash_but_not_onnxruntime_are_one_clear_error(exported, tmp_path, change, message,
                                                                           in_focus_paths, capsys):
    from focusnet.cli import main

    crafted = _rewrite(exported, tmp_path / "crafted.onnx", change, keep_hash=True)
    with pytest.raises(ModelError, match=message):
        load_onnx(crafted)
    assert main(["predict", str(in_focus_paths[0]), "--model", str(crafted), "--csv", str(tmp_path / "f.csv")]) == 1
    err = capsys.readouterr().err
    assert "focusnet predict: error:" in err and str(crafted) in err and "Traceback" not in err
    assert not (tmp_path / "f.csv").exists()
