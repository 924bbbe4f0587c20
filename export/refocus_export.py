"""A refocus model as an ONNX file or a bioimage.io package (image to image, onnxruntime only).

The ONNX file is the graph every focusnet front end runs
(:meth:`focusnet.refocus.model.RefocusModel.onnx_proto`): input ``image``
``[N, 1, H, W]`` normalised by the image's percentiles (1 and 99.8), output
``refocused`` in the same units; ``H`` and ``W`` multiples of 16. Its
``metadata_props`` hold focusnet's manifest: the model's config and one
SHA-256 over the graph *and* the config, so neither can be edited unnoticed
(:func:`focusnet.refocus.model.load_refocus_model` checks it).

The bioimage.io package (spec 0.5) declares the normalisation as the
``scale_range`` preprocessing, so deepImageJ, bioimageio.core and other
consumers feed raw images; its output is in normalised units.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from focusnet.classifier import onnx_manifest_sha256
from focusnet.errors import ExportError
from focusnet.files import check_output_file, replacing
from focusnet.refocus.model import REFOCUS_ONNX_FORMAT, RefocusModel, load_refocus_model
from focusnet.refocus.pairs import PERCENTILES
from focusnet.refocus.unet import ALLOWED_REFOCUS_OPS, ONNX_IMAGE_INPUT, ONNX_IMAGE_OUTPUT

from .bioimageio_package import shared_description
from .targets import refuse_inside_model

TEST_IMAGE = Path(__file__).resolve().parents[1] / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"
#: The test tensor: a crop of the example image, defocused by the model's own simulator to this level.
TEST_LEVEL = 3
TEST_SIZE = (256, 320)


def _source_and_target(model, out, overwrite: bool, what: str, suffix: str):
    model = load_refocus_model(model)
    if not isinstance(model, RefocusModel) or model.directory.suffix.lower() == ".onnx":
        raise ExportError(f"{model.directory} is not a refocus model folder; export needs one (config.json, "
                          "weights.npz)")
    if out is None:
        raise ExportError(f"an output path is required: {what}")
    out = Path(out)
    if out.suffix.lower() != suffix:
        raise ExportError(f"give the output's path as NAME{suffix}", setting="out")
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists: refusing to overwrite it", setting="overwrite")
    refuse_inside_model(out, model.directory)
    check_output_file(out, "out")
    return model, out


def build_refocus_onnx(model: RefocusModel):
    """The ONNX ModelProto with focusnet's manifest (see the module's description)."""
    import onnx
    from onnx import helper

    from focusnet import __version__

    proto = model.onnx_proto()
    used = {node.op_type for node in proto.graph.node}
    if not used <= ALLOWED_REFOCUS_OPS:  # the exporter must never write what the loader refuses
        raise RuntimeError(f"refocus graph uses ops outside the allow-list: {sorted(used - ALLOWED_REFOCUS_OPS)}")
    manifest = {"format": REFOCUS_ONNX_FORMAT, "format_version": 1, "focusnet_version": __version__,
                "model_config": model.config}
    manifest["sha256"] = onnx_manifest_sha256(proto, model.config)
    helper.set_model_props(proto, {"focusnet": json.dumps(manifest)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_refocus_onnx(model=None, out=None, overwrite: bool = False) -> Path:
    """Write a refocus model folder (default: the shipped one) as ``NAME.onnx``."""
    model, out = _source_and_target(model, out, overwrite, "an ONNX model, NAME.onnx", ".onnx")
    data = build_refocus_onnx(model).SerializeToString()
    with replacing(out) as temporary:
        Path(temporary).write_bytes(data)
    return out


def test_tensors(model: RefocusModel):
    """A real crop defocused by the simulator ``[1, 1, y, x]`` (counts) and its refocused image (normalised)."""
    from focusnet.images import read_image
    from focusnet.simulate import degrade

    height, width = TEST_SIZE
    crop = read_image(TEST_IMAGE)[:height, :width]
    defocused = degrade(crop, TEST_LEVEL, optics=model.optics, seed=0).astype(np.float32)
    low, high = np.percentile(defocused, PERCENTILES)
    # As a bioimage.io runtime computes it: scale_range (its epsilon), then the graph on the bare crop.
    normalised = ((defocused - low) / (high - low + 1e-6)).astype(np.float32)
    refocused = model.run_graph(normalised)
    return defocused[None, None], refocused[None, None].astype(np.float32)


def export_refocus_bioimageio(model=None, out=None, overwrite: bool = False) -> Path:
    """Write the bioimage.io package (``NAME.zip``) of a refocus model folder (default: the shipped one)."""
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5 as spec
    except ImportError:
        raise ExportError("the bioimage.io export needs bioimageio.spec: pip install bioimageio.core") from None
    from focusnet import __version__
    from focusnet.refocus.card import render_refocus_card

    model, out = _source_and_target(model, out, overwrite, "a package, NAME.zip", ".zip")
    multiple = model.spec.multiple()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "weights.onnx").write_bytes(build_refocus_onnx(model).SerializeToString())
        test_input, test_output = test_tensors(model)
        np.save(scratch / "test_input.npy", test_input)
        np.save(scratch / "test_output.npy", test_output)
        import matplotlib.pyplot as plt

        low, high = np.percentile(test_input, (0.1, 99.9))
        cover = np.concatenate([(test_input[0, 0] - low) / (high - low),
                                np.clip(test_output[0, 0], 0, 1)], axis=1)
        plt.imsave(scratch / "cover.png", np.clip(cover, 0, 1), cmap="gray")
        (scratch / "README.md").write_text(
            "# focusnet refocus\n\nRestores out-of-focus fluorescence images (input: raw counts; output: the "
            "refocused image in units of the input's 1st-99.8th percentile range). Only for images focusnet's "
            "focus classifier reads at a level this model restores; refocused images are for viewing and "
            "segmentation, not intensity measurements.\n\n" + render_refocus_card(model.directory))

        def space(axis, output=False):
            if output:
                return spec.SpaceOutputAxis(id=spec.AxisId(axis), size=spec.SizeReference(
                    tensor_id=spec.TensorId(ONNX_IMAGE_INPUT), axis_id=spec.AxisId(axis)))
            return spec.SpaceInputAxis(id=spec.AxisId(axis), size=spec.ParameterizedSize(min=multiple * 4,
                                                                                         step=multiple))

        channel = spec.ChannelAxis(channel_names=[spec.Identifier("intensity")])
        description = spec.ModelDescr(
            name="focusnet refocus",
            description="Restores out-of-focus fluorescence images: a U-Net trained on focusnet's physical defocus "
                        "simulator.",
            covers=[spec.FileDescr(source=scratch / "cover.png")],
            **shared_description(spec),
            documentation=spec.FileDescr(source=scratch / "README.md"),
            tags=["restoration", "refocus", "fluorescence-light-microscopy", "2d", "onnx"],
            version="1.0.0",
            inputs=[spec.InputTensorDescr(
                id=spec.TensorId(ONNX_IMAGE_INPUT), axes=[spec.BatchAxis(), channel, space("y"), space("x")],
                test_tensor=spec.FileDescr(source=scratch / "test_input.npy"),
                preprocessing=[spec.ScaleRangeDescr(kwargs=spec.ScaleRangeKwargs(
                    axes=[spec.AxisId("y"), spec.AxisId("x")], min_percentile=PERCENTILES[0],
                    max_percentile=PERCENTILES[1]))])],
            outputs=[spec.OutputTensorDescr(
                id=spec.TensorId(ONNX_IMAGE_OUTPUT), axes=[spec.BatchAxis(), channel, space("y", True),
                                                           space("x", True)],
                test_tensor=spec.FileDescr(source=scratch / "test_output.npy"))],
            weights=spec.WeightsDescr(onnx=spec.OnnxWeightsDescr(source=scratch / "weights.onnx", opset_version=18)),
            config={"focusnet": {"version": __version__, "refocus_model_config": model.config}},
        )
        with replacing(out) as temporary:
            save_bioimageio_package(description, output_path=temporary)
    shutil.rmtree(scratch, ignore_errors=True)
    return out
