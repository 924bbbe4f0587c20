"""A bioimage.io model package (spec 0.5): focusnet for deepImageJ, ilastik, QuPath, BiaPy and bioimageio.core.

Image-to-map tensors, so that a tool can show the answer over the image:

* input ``image`` ``[batch, y, x, channel=1]``, raw counts, y and x multiples of 84;
  preprocessing ``scale_linear`` by 1/65535 (the classifier's input);
* output ``probabilities`` ``[batch, y/84, x/84, 11]``: the level distribution of each
  84 x 84 tile.

Two weight formats compute the same: a TensorFlow 1 SavedModel (tag ``serve``,
one output, which TensorFlow 1.15 and bioimageio.core load) and ONNX (opset
18). The test tensors are a real in-focus crop and its map; the cover is that
crop's overlay; the documentation is the model card. Written with
bioimageio.spec's own description classes and packager.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from focusnet.contract import INPUT_SCALE, LEVELS, NUM_LEVELS, ONNX_OPSET, PAPER_DOI, PATCH_SIZE, SHIPPED_MODEL_DIR
from focusnet.errors import ExportError
from focusnet.files import replacing
from focusnet.model import FocusModel

from .targets import export_source_and_target

#: The TensorFlow SavedModel tag bioimage.io runtimes (and deepImageJ's TensorFlow 1 engine) load.
SERVE_TAG = "serve"
INPUT_ID, OUTPUT_ID = "image", "probabilities"
#: The test crop: 3 x 4 tiles of the held-out in-focus example image.
TEST_TILES = (3, 4)
TEST_IMAGE = SHIPPED_MODEL_DIR.parents[2] / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif"


def _tile_map(x, tf, classify):
    """``[b, y, x, 1]`` -> ``[b, y/84, x/84, 11]`` with TensorFlow ops around a patch classifier."""
    shape = tf.shape(x)
    rows, cols = tf.math.floordiv(shape[1], PATCH_SIZE), tf.math.floordiv(shape[2], PATCH_SIZE)
    tiles = tf.reshape(x, tf.stack([shape[0], rows, PATCH_SIZE, cols, PATCH_SIZE]))
    patches = tf.reshape(tf.transpose(tiles, [0, 1, 3, 2, 4]), [-1, PATCH_SIZE, PATCH_SIZE, 1])
    return tf.reshape(classify(patches), tf.stack([shape[0], rows, cols, NUM_LEVELS]))


def write_savedmodel(model: FocusModel, folder: Path) -> None:
    """The image-to-map TensorFlow 1 SavedModel (tag ``serve``, one output) in ``folder``."""
    from focusnet.network import inference_graph
    from focusnet.tf import import_tensorflow

    tf = import_tensorflow()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        image = v1.placeholder(tf.float32, shape=[None, None, None, 1], name=INPUT_ID)
        weights = {name: tf.constant(value, name=name.replace("/", "_")) for name, value in model.weights.items()}
        output = tf.identity(_tile_map(image, tf, lambda p: inference_graph(p, weights, model.architecture)),
                             name=OUTPUT_ID)
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(folder))
            signature = v1.saved_model.signature_def_utils.predict_signature_def(inputs={INPUT_ID: image},
                                                                                 outputs={OUTPUT_ID: output})
            builder.add_meta_graph_and_variables(session, [SERVE_TAG], signature_def_map={"serving_default": signature},
                                                 strip_default_attrs=True)
            builder.save()


def build_onnx_map(model: FocusModel):
    """The image-to-map ONNX model: tiling ops around the classifier graph of ``export/onnxexport.py``."""
    import onnx
    from onnx import TensorProto, helper

    from .onnxexport import GraphWriter, build_onnx

    classifier = build_onnx(model).graph
    writer = GraphWriter(classifier.initializer)
    nodes, initialisers, constant, node = writer.nodes, writer.initialisers, writer.constant, writer.node

    shape = node("Shape", [INPUT_ID], "image_shape")
    batch = node("Slice", [shape, constant("at0", np.array([0], np.int64)), constant("at1", np.array([1], np.int64))],
                 "batch")
    height = node("Slice", [shape, "at1", constant("at2", np.array([2], np.int64))], "height")
    width = node("Slice", [shape, "at2", constant("at3", np.array([3], np.int64))], "width")
    tile = constant("tile", np.array([PATCH_SIZE], np.int64))
    rows, cols = node("Div", [height, tile], "rows"), node("Div", [width, tile], "cols")
    tiles = node("Reshape", [INPUT_ID, node("Concat", [batch, rows, tile, cols, tile], "tiles_shape", axis=0)],
                 "tiles")
    patches = node("Reshape", [node("Transpose", [tiles], "tiles_rowmajor", perm=[0, 1, 3, 2, 4]),
                               constant("patch_shape", np.array([-1, PATCH_SIZE, PATCH_SIZE, 1], np.int64))],
                   "patches")
    # The classifier reads "patches" and writes "probabilities": rename its output, then map it.
    for classifier_node in classifier.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(classifier_node)
        copy.output[:] = ["patch_probabilities" if name == OUTPUT_ID else name for name in copy.output]
        copy.name = "patch_probabilities" if copy.name == OUTPUT_ID else copy.name
        nodes.append(copy)
    assert patches == "patches"
    levels = constant("map_levels", np.array([NUM_LEVELS], np.int64))
    node("Reshape", ["patch_probabilities", node("Concat", [batch, rows, cols, levels], "map_shape", axis=0)],
         OUTPUT_ID)
    graph = helper.make_graph(
        nodes, "focusnet_focus_map",
        [helper.make_tensor_value_info(INPUT_ID, TensorProto.FLOAT, ["batch", "y", "x", 1])],
        [helper.make_tensor_value_info(OUTPUT_ID, TensorProto.FLOAT, ["batch", "rows", "cols", NUM_LEVELS])],
        initialisers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="focusnet")
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def shared_description(spec) -> dict:
    """What every focusnet package says alike: authors, citation, licence (bioimage.io spec 0.5 classes)."""
    return {"authors": [spec.Author(name="focusnet developers")],
            "cite": [spec.CiteEntry(text="Yang SJ et al. (2018) Assessing microscope image focus quality with deep "
                                         "learning. BMC Bioinformatics 19:77", doi=spec.Doi(PAPER_DOI))],
            "license": spec.LicenseId("Apache-2.0")}


def test_tensors(model: FocusModel):
    """A real in-focus crop ``[1, y, x, 1]`` (raw counts) and its map, computed by focusnet."""
    from focusnet.images import read_image

    rows, cols = TEST_TILES
    crop = read_image(TEST_IMAGE)[:rows * PATCH_SIZE, :cols * PATCH_SIZE].astype(np.float32)
    patches = crop.reshape(rows, PATCH_SIZE, cols, PATCH_SIZE).transpose(0, 2, 1, 3).reshape(-1, PATCH_SIZE,
                                                                                           PATCH_SIZE)
    probabilities = model.predict_patches(patches / np.float32(INPUT_SCALE)).astype(np.float32)
    return crop[None, ..., None], probabilities.reshape(1, rows, cols, NUM_LEVELS)


def export_bioimageio(model=None, out=None, overwrite: bool = False) -> Path:
    """Write the bioimage.io package (``.zip``) of a model folder (default: the shipped model).

    Raises
    ------
    ExportError
        bioimageio.spec missing, not a model folder, an existing ``out`` without ``overwrite``, or a
        description bioimageio.spec finds invalid.
    """
    try:
        from bioimageio.spec import save_bioimageio_package
        from bioimageio.spec.model import v0_5 as spec
    except ImportError:
        raise ExportError("the bioimage.io export needs bioimageio.spec: pip install bioimageio.core") from None
    from focusnet import __version__
    from focusnet.card import render_card
    from focusnet.figures import overlay_rgb
    from focusnet.inference import predict_image

    model, out = export_source_and_target(model, out, overwrite, "a package, NAME.zip")
    if out.suffix.lower() != ".zip":
        raise ExportError("give the package's path as NAME.zip (e.g. focusnet.bioimageio.zip)")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_savedmodel(model, scratch / "savedmodel")
        shutil.make_archive(str(scratch / "tf_weights"), "zip", scratch / "savedmodel")
        (scratch / "weights.onnx").write_bytes(build_onnx_map(model).SerializeToString())
        test_input, test_output = test_tensors(model)
        np.save(scratch / "test_input.npy", test_input)
        np.save(scratch / "test_output.npy", test_output)
        import matplotlib.pyplot as plt

        crop = test_input[0, ..., 0]
        plt.imsave(scratch / "cover.png", overlay_rgb(crop, predict_image(crop, model, scale=1.0)))
        (scratch / "README.md").write_text(
            "# focusnet: absolute focus quality of fluorescence images\n\n"
            "Each 84 x 84 tile of a raw (16-bit) fluorescence image gets a probability for each of 11 defocus "
            "levels (0 = in focus; level L is the blur of L x 2 um of defocus of a 20x/0.5 NA objective, "
            "simulated). Input: the raw counts; output: the map of tile distributions. Tiles of empty background "
            "have no meaningful answer (focusnet's own tools leave them out). More: "
            "https://doi.org/" + PAPER_DOI + " and focusnet's documentation.\n\n" + render_card(model.directory))
        image_axes = [spec.BatchAxis(), spec.SpaceInputAxis(id=spec.AxisId("y"), size=spec.ParameterizedSize(
            min=PATCH_SIZE, step=PATCH_SIZE)), spec.SpaceInputAxis(id=spec.AxisId("x"), size=spec.ParameterizedSize(
                min=PATCH_SIZE, step=PATCH_SIZE)), spec.ChannelAxis(channel_names=[spec.Identifier("counts")])]
        output_axes = [spec.BatchAxis()] + [
            spec.SpaceOutputAxis(id=spec.AxisId(axis), scale=PATCH_SIZE,
                                 size=spec.SizeReference(tensor_id=spec.TensorId(INPUT_ID), axis_id=spec.AxisId(axis)))
            for axis in "yx"] + [spec.ChannelAxis(channel_names=[spec.Identifier(f"level{level}") for level in LEVELS])]
        description = spec.ModelDescr(
            name="focusnet focus quality",
            description="Absolute focus quality of fluorescence microscope images: a probability for each of 11 "
                        "defocus levels for every 84 x 84 tile (after Yang et al. 2018).",
            covers=[spec.FileDescr(source=scratch / "cover.png")],
            **shared_description(spec),
            documentation=spec.FileDescr(source=scratch / "README.md"),
            tags=["focus", "quality-control", "fluorescence-light-microscopy", "2d", "tensorflow", "onnx"],
            version="1.0.0",
            inputs=[spec.InputTensorDescr(
                id=spec.TensorId(INPUT_ID), axes=image_axes,
                test_tensor=spec.FileDescr(source=scratch / "test_input.npy"),
                preprocessing=[spec.ScaleLinearDescr(kwargs=spec.ScaleLinearKwargs(gain=1.0 / INPUT_SCALE))])],
            outputs=[spec.OutputTensorDescr(id=spec.TensorId(OUTPUT_ID), axes=output_axes,
                                            test_tensor=spec.FileDescr(source=scratch / "test_output.npy"))],
            weights=spec.WeightsDescr(
                tensorflow_saved_model_bundle=spec.TensorflowSavedModelBundleWeightsDescr(
                    source=scratch / "tf_weights.zip", tensorflow_version=spec.Version("1.15")),
                onnx=spec.OnnxWeightsDescr(source=scratch / "weights.onnx", opset_version=ONNX_OPSET)),
            config={"focusnet": {"version": __version__, "model_config": model.config}},
        )
        with replacing(out) as temporary:
            save_bioimageio_package(description, output_path=temporary)
    return out
