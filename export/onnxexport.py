"""ONNX export: the patch classifier for onnxruntime, with no TensorFlow needed to measure focus.

The graph is built directly from a model folder's folded inference weights
with ``onnx.helper`` (no converter: tf2onnx turns the network's ``Log1p`` into
an invalid model), op for op what :func:`focusnet.network.inference_graph`
computes:

* input ``patches`` ``[N, 84, 84, 1]`` float32, raw counts / 65535 (as the bundle's tiles), at once transposed
  to channels first;
* ``log(1 + counts - patch minimum) - patch mean``;
* each convolution (TensorFlow's SAME padding written as explicit pads), bias, ReLU, pooling;
* the head; output ``probabilities`` ``[N, 11]``.

Only ops in :data:`focusnet.onnxmodel.ALLOWED_ONNX_OPS` are used (the loader
refuses any other), at opset :data:`focusnet.contract.ONNX_OPSET`. The
model's metadata (``metadata_props``) carries focusnet's manifest: format and
version, focusnet version, the model's config and the SHA-256 of the graph,
which the loader checks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from focusnet.classifier import onnx_manifest_sha256
from focusnet.contract import (
    INPUT_SCALE,
    NUM_LEVELS,
    ONNX_FORMAT,
    ONNX_FORMAT_VERSION,
    ONNX_INPUT,
    ONNX_MANIFEST_KEY,
    ONNX_OPSET,
    ONNX_OUTPUT,
    PATCH_SIZE,
)
from focusnet.files import replacing
from focusnet.onnxmodel import ALLOWED_ONNX_OPS

from .targets import export_source_and_target


class GraphWriter:
    """Nodes and initialisers of an ONNX graph being written, each node named after its output."""

    def __init__(self, initialisers=()):
        self.nodes, self.initialisers = [], list(initialisers)

    def constant(self, name, value):
        """Add an initialiser; return its name."""
        from onnx import numpy_helper

        self.initialisers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op, inputs, output, **attributes):
        """Add a node writing ``output``; return its name."""
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def _same_pads(size: int, kernel: int, stride: int) -> tuple:
    """TensorFlow's SAME padding (begin, end) for one axis: the extra pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def build_onnx(model):
    """The ONNX ModelProto of a loaded model folder (see the module's description)."""
    import json

    import onnx
    from onnx import TensorProto, helper

    from focusnet import __version__

    weights, architecture = model.weights, model.architecture
    writer = GraphWriter()
    nodes, initialisers, constant, node = writer.nodes, writer.initialisers, writer.constant, writer.node

    # Channels first before anything else: with one channel this moves no data, and onnxruntime's elementwise
    # ops on an innermost axis of length 1 (NHWC) cost more than all four convolutions together (measured:
    # 0.078 s against 0.033 s for the 576 patches of a 2048 x 2048 image, the same numbers to the last bit).
    nchw = node("Transpose", [ONNX_INPUT], "nchw", perm=[0, 3, 1, 2])
    axes = constant("axes_chw", np.array([1, 2, 3], np.int64))
    counts = node("Mul", [nchw, constant("input_scale", np.float32(INPUT_SCALE))], "counts")
    floor = node("ReduceMin", [counts, axes], "patch_min", keepdims=1)
    above = node("Sub", [counts, floor], "above_floor")
    # log(1 + x) as Log(Add): onnxruntime has no Log1p.
    logarithm = node("Log", [node("Add", [above, constant("one", np.float32(1.0))], "one_plus")], "logarithm")
    mean = node("ReduceMean", [logarithm, axes], "patch_mean", keepdims=1)
    x = node("Sub", [logarithm, mean], "preprocessed")
    size = PATCH_SIZE
    for index, conv in enumerate(architecture.convs):
        kernel = weights[f"conv{index}/kernel"]  # HWIO -> OIHW
        begin, end = _same_pads(size, conv.kernel, conv.stride)
        x = node("Conv", [x, constant(f"conv{index}_w", np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))),
                          constant(f"conv{index}_b", weights[f"conv{index}/bias"])], f"conv{index}",
                 strides=[conv.stride, conv.stride], pads=[begin, begin, end, end],
                 kernel_shape=[conv.kernel, conv.kernel])
        x = node("Relu", [x], f"relu{index}")
        size = -(-size // conv.stride)
        if conv.pool:
            x = node("MaxPool", [x], f"pool{index}", kernel_shape=[2, 2], strides=[2, 2])
            size //= 2
    if architecture.head == "global_average":
        x = node("ReduceMean", [x, constant("axes_hw", np.array([2, 3], np.int64))], "features", keepdims=0)
    else:  # TensorFlow flattens NHWC: back to that order first
        x = node("Flatten", [node("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])], "flat", axis=1)
        x = node("Relu", [node("Add", [node("MatMul", [x, constant("hidden_w", weights["hidden/kernel"])], "hidden"),
                                       constant("hidden_b", weights["hidden/bias"])], "hidden_biased")], "features")
    logits = node("Add", [node("MatMul", [x, constant("levels_w", weights["levels/kernel"])], "levels"),
                          constant("levels_b", weights["levels/bias"])], "logits")
    node("Softmax", [logits], ONNX_OUTPUT, axis=1)
    graph = helper.make_graph(
        nodes, "focusnet_patch_classifier",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["N", PATCH_SIZE, PATCH_SIZE, 1])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["N", NUM_LEVELS])], initialisers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="focusnet", producer_version=__version__)
    # A current IR version that every onnxruntime of the last years reads.
    proto.ir_version = min(proto.ir_version, 9)
    used = {n.op_type for n in proto.graph.node}
    if not used <= ALLOWED_ONNX_OPS:  # the exporter must never write what the loader refuses
        raise RuntimeError(f"ONNX graph uses ops outside the allow-list: {sorted(used - ALLOWED_ONNX_OPS)}")
    manifest = {"format": ONNX_FORMAT, "format_version": ONNX_FORMAT_VERSION, "focusnet_version": __version__,
                "model_config": model.config, "sha256": onnx_manifest_sha256(proto, model.config)}
    helper.set_model_props(proto, {ONNX_MANIFEST_KEY: json.dumps(manifest)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model=None, out=None, overwrite: bool = False) -> Path:
    """Export a model folder as ``MODEL.onnx`` (written whole; an existing file only with ``overwrite``).

    Raises
    ------
    ExportError
        Not a model folder (a bundle), no or an existing output path, or a missing folder.
    """
    model, out = export_source_and_target(model, out, overwrite, "an ONNX model, NAME.onnx")
    proto = build_onnx(model)
    with replacing(out) as temporary:
        temporary.write_bytes(proto.SerializeToString())
    return out
