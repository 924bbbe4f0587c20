"""The patch classifier: architectures, preprocessing and the RPS loss.

Two representations of one network:

* a trainable Keras model (convolutions without bias, each followed by batch
  normalisation), used only by :mod:`focusnet.train`;
* *inference weights*: a plain ``{name: ndarray}`` dictionary in which batch
  normalisation is folded into the convolution weights and biases. The
  inference graph (:func:`inference_graph`) is built from these with basic
  TensorFlow ops that TensorFlow 1.12 also has (Conv2D, BiasAdd, Relu,
  MaxPool, Mean, Min, Log1p, MatMul, Softmax, ...), so the very same function
  serves TensorFlow 2 inference and the TF1 export for Fiji.

Input to both is a batch of 84x84 patches of raw counts divided by 65535
(what Fiji feeds). The network's first step, :func:`preprocess`, undoes that
scaling, subtracts the patch minimum (removes the sensor offset), takes
``log(1 + counts)`` (turns gain into an additive constant) and subtracts the
patch mean (which removes that constant).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .contract import INPUT_SCALE, NUM_LEVELS, PATCH_SIZE
from .errors import InvalidParameterError
from .tf import import_tensorflow


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """One convolution + batch normalisation + ReLU (+ optional max-pool 2)."""

    kernel: int
    filters: int
    stride: int = 1
    pool: bool = False


@dataclasses.dataclass(frozen=True)
class Architecture:
    """A named network configuration.

    Attributes
    ----------
    name : str
    convs : tuple of ConvSpec
    head : str
        ``"global_average"``: mean over positions, then one dense layer to the
        levels; ``"dense"``: flatten, a hidden dense layer with dropout, then
        the output layer (the paper's head).
    hidden_units : int
        Width of the hidden dense layer (``"dense"`` head only).
    dropout : float
        Dropout rate before the output layer (training only).
    """

    name: str
    convs: tuple
    head: str
    hidden_units: int = 0
    dropout: float = 0.0


ARCHITECTURES = {
    # Yang et al. 2018: conv 5x5x32, max-pool 2, conv 5x5x64, max-pool 2,
    # dense 1024, dropout 0.5, dense 11 (about 29 M parameters).
    "paper": Architecture(
        name="paper",
        convs=(ConvSpec(5, 32, pool=True), ConvSpec(5, 64, pool=True)),
        head="dense",
        hidden_units=1024,
        dropout=0.5,
    ),
    # Compact (about 42 k parameters): a strided 5x5 first layer keeps the
    # high spatial frequencies that carry defocus while quartering the
    # positions, then three strided 3x3 layers (84 -> 42 -> 21 -> 11 -> 6
    # positions per side, so the last layer sees the whole patch, as the
    # widest blur needs), then a global average over positions, since defocus
    # is a texture property of the whole patch. Every layer halves the
    # positions, which keeps the cost per patch at about 4 M multiply-adds
    # (`paper`: about 125 M).
    "default": Architecture(
        name="default",
        convs=(
            ConvSpec(5, 12, stride=2),
            ConvSpec(3, 24, stride=2),
            ConvSpec(3, 48, stride=2),
            ConvSpec(3, 64, stride=2),
        ),
        head="global_average",
    ),
}


def get_architecture(name: str) -> Architecture:
    """Look up a named architecture, with a clear error for unknown names."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise InvalidParameterError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}") from None


def preprocess(patches):
    """Make patches invariant to sensor offset and gain (TensorFlow ops).

    Parameters
    ----------
    patches : tf.Tensor, shape (N, 84, 84, 1)
        Raw counts divided by 65535.

    Returns
    -------
    tf.Tensor, same shape
        ``log(1 + counts - min)`` minus its patch mean.
    """
    tf = import_tensorflow()

    counts = patches * INPUT_SCALE
    above_floor = counts - tf.reduce_min(counts, axis=[1, 2, 3], keepdims=True)
    # log1p rather than log(x + 1): TF2 writes "+" as AddV2, which TF 1.12 lacks.
    logarithm = tf.math.log1p(above_floor)
    return logarithm - tf.reduce_mean(logarithm, axis=[1, 2, 3], keepdims=True)


def ranked_probability_score(true_levels, probabilities):
    """Mean ranked probability score of predicted level distributions.

    RPS = 1/(K-1) sum_k (CDF_predicted(k) - CDF_true(k))^2: zero for a
    certain correct answer, and it punishes probability mass in proportion to
    how far (in levels) it sits from the true level.

    Parameters
    ----------
    true_levels : tf.Tensor of int, shape (N,)
    probabilities : tf.Tensor, shape (N, K)
    """
    tf = import_tensorflow()

    num_levels = probabilities.shape[-1]
    true_cdf = tf.cumsum(tf.one_hot(tf.cast(true_levels, tf.int32), num_levels), axis=-1)
    predicted_cdf = tf.cumsum(probabilities, axis=-1)
    return tf.reduce_mean(tf.reduce_sum(tf.square(predicted_cdf - true_cdf), axis=-1)) / (num_levels - 1)


def build_trainable(architecture: Architecture, seed: int = 0):
    """The Keras model that is trained (batch norm and dropout active)."""
    tf = import_tensorflow()

    layers = tf.keras.layers
    initializer = tf.keras.initializers.HeUniform
    inputs = tf.keras.Input((PATCH_SIZE, PATCH_SIZE, 1))
    x = layers.Lambda(preprocess, name="preprocess")(inputs)
    for index, conv in enumerate(architecture.convs):
        x = layers.Conv2D(conv.filters, conv.kernel, strides=conv.stride, padding="same", use_bias=False,
                          kernel_initializer=initializer(seed + index), name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"bn{index}")(x)
        x = layers.ReLU(name=f"relu{index}")(x)
        if conv.pool:
            x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
    if architecture.head == "global_average":
        x = layers.GlobalAveragePooling2D(name="average")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(architecture.hidden_units, activation="relu",
                         kernel_initializer=initializer(seed + 100), name="hidden")(x)
    if architecture.dropout:
        x = layers.Dropout(architecture.dropout, seed=seed, name="dropout")(x)
    outputs = layers.Dense(NUM_LEVELS, activation="softmax", name="levels",
                           kernel_initializer=tf.keras.initializers.GlorotUniform(seed + 200))(x)
    return tf.keras.Model(inputs, outputs, name=f"focusnet_{architecture.name}")


def fold_inference_weights(model, architecture: Architecture, epsilon=None) -> dict:
    """Fold each batch normalisation into its convolution.

    ``BN(conv(x)) = gamma (conv(x) - mean) / sqrt(var + eps) + beta`` equals a
    convolution with kernel ``w * s`` and bias ``beta - mean * s``, where
    ``s = gamma / sqrt(var + eps)``.

    Returns
    -------
    dict of str to ndarray (float32)
        ``conv{i}/kernel``, ``conv{i}/bias``, ``hidden/kernel``, ``hidden/bias``
        (dense head only), ``levels/kernel``, ``levels/bias``.
    """
    weights = {}
    for index in range(len(architecture.convs)):
        kernel = model.get_layer(f"conv{index}").kernel.numpy()
        bn = model.get_layer(f"bn{index}")
        eps = bn.epsilon if epsilon is None else epsilon
        scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + eps)
        weights[f"conv{index}/kernel"] = kernel * scale
        weights[f"conv{index}/bias"] = bn.beta.numpy() - bn.moving_mean.numpy() * scale
    dense_layers = ["hidden", "levels"] if architecture.head == "dense" else ["levels"]
    for name in dense_layers:
        layer = model.get_layer(name)
        weights[f"{name}/kernel"] = layer.kernel.numpy()
        weights[f"{name}/bias"] = layer.bias.numpy()
    return {name: value.astype(np.float32) for name, value in weights.items()}


def expected_weight_shapes(architecture: Architecture) -> dict:
    """Shapes every inference weight of an architecture must have."""
    shapes = {}
    channels, size = 1, PATCH_SIZE
    for index, conv in enumerate(architecture.convs):
        shapes[f"conv{index}/kernel"] = (conv.kernel, conv.kernel, channels, conv.filters)
        shapes[f"conv{index}/bias"] = (conv.filters,)
        channels = conv.filters
        size = -(-size // conv.stride)
        if conv.pool:
            size //= 2
    features = channels if architecture.head == "global_average" else size * size * channels
    if architecture.head == "dense":
        shapes["hidden/kernel"] = (features, architecture.hidden_units)
        shapes["hidden/bias"] = (architecture.hidden_units,)
        features = architecture.hidden_units
    shapes["levels/kernel"] = (features, NUM_LEVELS)
    shapes["levels/bias"] = (NUM_LEVELS,)
    return shapes


def inference_graph(patches, weights: dict, architecture: Architecture, tf=None):
    """Probabilities of each level for a batch of patches (inference only).

    Parameters
    ----------
    patches : tensor, shape (N, 84, 84, 1), float32
        Raw counts divided by 65535.
    weights : dict
        Folded inference weights (:func:`fold_inference_weights`); ndarrays
        or tensors.
    architecture : Architecture
    tf : module, optional
        The TensorFlow API to build with (``tf.compat.v1`` for the export);
        defaults to ``tensorflow``.

    Returns
    -------
    tensor, shape (N, 11)
    """
    if tf is None:
        tf = import_tensorflow()
    x = preprocess(patches)
    for index, conv in enumerate(architecture.convs):
        x = tf.nn.conv2d(x, weights[f"conv{index}/kernel"], strides=[1, conv.stride, conv.stride, 1], padding="SAME")
        x = tf.nn.relu(tf.nn.bias_add(x, weights[f"conv{index}/bias"]))
        if conv.pool:
            x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID") if hasattr(tf.nn, "max_pool2d") \
                else tf.nn.max_pool(x, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    if architecture.head == "global_average":
        x = tf.reduce_mean(x, axis=[1, 2])
    else:
        x = tf.reshape(x, [-1, int(np.prod(weights["hidden/kernel"].shape[:1]))])
        x = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, weights["hidden/kernel"]), weights["hidden/bias"]))
    logits = tf.nn.bias_add(tf.matmul(x, weights["levels/kernel"]), weights["levels/bias"])
    return tf.nn.softmax(logits)


def load_inference_weights(model, architecture: Architecture, weights: dict) -> None:
    """Start a trainable model from folded inference weights, its batch normalisation frozen.

    The inverse of :func:`fold_inference_weights` for fine-tuning: each
    convolution takes the folded kernel, each batch normalisation becomes the
    identity plus the folded bias (gamma 1, moving mean 0, moving variance
    ``1 - epsilon``) and is frozen, so it runs in inference mode and the
    network computes exactly what the folded model does from the first step.
    """
    for index in range(len(architecture.convs)):
        model.get_layer(f"conv{index}").kernel.assign(weights[f"conv{index}/kernel"])
        bn = model.get_layer(f"bn{index}")
        bn.gamma.assign(np.ones(bn.gamma.shape, np.float32))
        bn.beta.assign(weights[f"conv{index}/bias"])
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, np.float32))
        bn.moving_variance.assign(np.full(bn.moving_variance.shape, 1.0 - bn.epsilon, np.float32))
        bn.trainable = False
    for name in (["hidden", "levels"] if architecture.head == "dense" else ["levels"]):
        layer = model.get_layer(name)
        layer.kernel.assign(weights[f"{name}/kernel"])
        layer.bias.assign(weights[f"{name}/bias"])
