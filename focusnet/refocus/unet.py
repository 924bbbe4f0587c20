"""The refocusing network: a small U-Net, trainable in Keras and run as an ONNX graph.

The image is first folded 2x2 into four channels (space-to-depth), so every
convolution works at half resolution or less: a 2048 x 2048 image costs
about 6 k multiply-adds per pixel. An encoder of ``depth`` levels (two 3x3
convolutions with ReLU each, then 2x2 max-pooling) is followed by a decoder
that upsamples by nearest neighbour, concatenates the encoder's features of
the same scale (the cross connections) and applies one 3x3 convolution with
ReLU. A 1x1 convolution gives four channels that unfold (depth-to-space)
into the *correction*, which is added to the input: the network learns what
defocus took away, so an in-focus input needs no change.

Two representations of one network, as for the classifier:

* a trainable Keras model (:func:`build_trainable`), used only for training;
* *weights*: ``{name: ndarray}`` with kernels ``(kh, kw, in, out)`` and biases,
  from which :func:`build_onnx` writes the graph that every front end runs
  (:mod:`focusnet.refocus.model`), so inference needs onnxruntime only.

Input and output are images normalised by the input's percentiles
(:func:`focusnet.refocus.pairs.normalisation`), shape ``(N, 1, H, W)`` for
ONNX and ``(N, H, W, 1)`` for Keras, with ``H`` and ``W`` multiples of
:meth:`UNetSpec.multiple`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import InvalidParameterError

#: Ops a refocus graph may contain (checked by the loader and the exporter): no I/O, no custom ops.
ALLOWED_REFOCUS_OPS = frozenset({"SpaceToDepth", "DepthToSpace", "Conv", "Relu", "MaxPool", "Resize", "Concat",
                                 "Add"})
ONNX_IMAGE_INPUT = "image"
ONNX_IMAGE_OUTPUT = "refocused"


@dataclasses.dataclass(frozen=True)
class UNetSpec:
    """The shape of a refocus U-Net.

    Parameters
    ----------
    base_filters : int
        Channels at the first (half-resolution) level; each deeper level doubles them, up to ``max_filters``.
    depth : int
        Encoder levels below the first (each halves the resolution).
    max_filters : int
    """

    base_filters: int = 16
    depth: int = 3
    max_filters: int = 64

    def __post_init__(self):
        for name in ("base_filters", "depth", "max_filters"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise InvalidParameterError(f"UNetSpec.{name} must be a positive integer, got {value!r}")

    def filters(self, level: int) -> int:
        """Channels of encoder level ``level`` (0 = half resolution)."""
        return min(self.base_filters * 2 ** level, self.max_filters)

    def multiple(self) -> int:
        """Image sides must be multiples of this (space-to-depth, then ``depth`` poolings)."""
        return 2 * 2 ** self.depth

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _layers(spec: UNetSpec) -> list:
    """(name, kernel size, input channels, output channels) of every convolution, in graph order."""
    layers, channels = [], 4
    for level in range(spec.depth + 1):
        filters = spec.filters(level)
        layers += [(f"enc{level}a", 3, channels, filters), (f"enc{level}b", 3, filters, filters)]
        channels = filters
    for level in reversed(range(spec.depth)):
        filters = spec.filters(level)
        layers.append((f"dec{level}", 3, channels + filters, filters))
        channels = filters
    layers.append(("out", 1, channels, 4))
    return layers


def expected_weight_shapes(spec: UNetSpec) -> dict:
    """Shapes every weight of a U-Net must have."""
    shapes = {}
    for name, kernel, inputs, outputs in _layers(spec):
        shapes[f"{name}/kernel"] = (kernel, kernel, inputs, outputs)
        shapes[f"{name}/bias"] = (outputs,)
    return shapes


def build_trainable(spec: UNetSpec, seed: int = 0):
    """The Keras model that is trained: normalised image ``(N, H, W, 1)`` in, refocused image out."""
    from ..tf import import_tensorflow

    tf = import_tensorflow()
    layers = tf.keras.layers
    convs = {name: layers.Conv2D(outputs, kernel, padding="same", name=name,
                                 activation=None if name == "out" else "relu",
                                 kernel_initializer=(tf.keras.initializers.Zeros() if name == "out"
                                                     else tf.keras.initializers.HeUniform(seed + index)))
             for index, (name, kernel, _, outputs) in enumerate(_layers(spec))}
    image = tf.keras.Input((None, None, 1))
    x = layers.Lambda(lambda t: tf.nn.space_to_depth(t, 2), name="fold")(image)
    skips = []
    for level in range(spec.depth + 1):
        if level:
            x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = convs[f"enc{level}b"](convs[f"enc{level}a"](x))
        skips.append(x)
    for level in reversed(range(spec.depth)):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}")(x)
        x = convs[f"dec{level}"](layers.Concatenate(name=f"cat{level}")([x, skips[level]]))
    correction = layers.Lambda(lambda t: tf.nn.depth_to_space(t, 2), name="unfold")(convs["out"](x))
    refocused = layers.Add(name="refocused")([image, correction])
    return tf.keras.Model(image, refocused, name="focusnet_refocus")


def trainable_weights(model, spec: UNetSpec) -> dict:
    """The weights of a trained Keras U-Net, by name (float32)."""
    weights = {}
    for name, *_ in _layers(spec):
        layer = model.get_layer(name)
        weights[f"{name}/kernel"] = layer.kernel.numpy().astype(np.float32)
        weights[f"{name}/bias"] = layer.bias.numpy().astype(np.float32)
    return weights


def set_trainable_weights(model, spec: UNetSpec, weights: dict) -> None:
    """Start a Keras U-Net from saved weights (fine-tuning)."""
    for name, *_ in _layers(spec):
        layer = model.get_layer(name)
        layer.kernel.assign(weights[f"{name}/kernel"])
        layer.bias.assign(weights[f"{name}/bias"])


def build_onnx_graph(spec: UNetSpec, weights: dict, name: str = "focusnet_refocus"):
    """The U-Net as an ONNX GraphProto: ``image`` ``(N, 1, H, W)`` float32 in, ``refocused`` out.

    Kernels go from Keras' ``(kh, kw, in, out)`` to ONNX's ``(out, in, kh, kw)``;
    the channel order of space-to-depth is the same in both (DepthToSpace in
    mode ``DCR`` is TensorFlow's ``depth_to_space``).
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, initialisers = [], []

    def node(op, inputs, output, **attributes):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(x, layer, kernel, relu=True):
        w = np.ascontiguousarray(weights[f"{layer}/kernel"].transpose(3, 2, 0, 1)).astype(np.float32)
        initialisers.append(numpy_helper.from_array(w, f"{layer}_w"))
        initialisers.append(numpy_helper.from_array(weights[f"{layer}/bias"].astype(np.float32), f"{layer}_b"))
        pad = kernel // 2
        x = node("Conv", [x, f"{layer}_w", f"{layer}_b"], layer, kernel_shape=[kernel, kernel],
                 pads=[pad, pad, pad, pad])
        return node("Relu", [x], f"{layer}_relu") if relu else x

    initialisers.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up_scales"))
    x = node("SpaceToDepth", [ONNX_IMAGE_INPUT], "fold", blocksize=2)
    skips = []
    for level in range(spec.depth + 1):
        if level:
            x = node("MaxPool", [x], f"pool{level}", kernel_shape=[2, 2], strides=[2, 2])
        x = conv(conv(x, f"enc{level}a", 3), f"enc{level}b", 3)
        skips.append(x)
    for level in reversed(range(spec.depth)):
        x = node("Resize", [x, "", "up_scales"], f"up{level}", mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        x = conv(node("Concat", [x, skips[level]], f"cat{level}", axis=1), f"dec{level}", 3)
    correction = node("DepthToSpace", [conv(x, "out", 1, relu=False)], "unfold", blocksize=2, mode="DCR")
    node("Add", [ONNX_IMAGE_INPUT, correction], ONNX_IMAGE_OUTPUT)
    shape = ["N", 1, "H", "W"]
    return helper.make_graph(nodes, name, [helper.make_tensor_value_info(ONNX_IMAGE_INPUT, TensorProto.FLOAT, shape)],
                             [helper.make_tensor_value_info(ONNX_IMAGE_OUTPUT, TensorProto.FLOAT, shape)],
                             initialisers)
