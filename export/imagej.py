"""The ImageJ plugin's model: the folded weights and settings as one ``java.util.Properties`` text file.

The plugin (``imagej/src/focusnet``) runs the network in plain Java, so it needs the weights in a form
Java reads with its standard library: each array float32 little-endian in base64, with its shape;
the architecture's strides; the patch size, levels, input scale and pixel size; and the model's own
level-to-micrometre table (for the lens it was trained for), which the plugin interpolates as
:class:`focusnet.defocus.DefocusScale` does, and the model's blur per level, which it matches another
objective's blur to. ``focusnet export`` writes it into every bundle as
:data:`focusnet.contract.IMAGEJ_MODEL_FILE`, with its SHA-256 in the manifest.
"""

from __future__ import annotations

import base64

import numpy as np

from focusnet import __version__
from focusnet.contract import (
    IMAGEJ_MODEL_FORMAT,
    IMAGEJ_MODEL_FORMAT_VERSION,
    INPUT_SCALE,
    NUM_LEVELS,
    PATCH_SIZE,
)


def _array(name: str, value) -> list:
    value = np.asarray(value, dtype="<f4")
    encoded = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
    return [f"{name}.shape={','.join(str(size) for size in value.shape)}", f"{name}={encoded}"]


def imagej_model_text(model) -> str | None:
    """The Properties text of a loaded model folder (see the module's description).

    None for an architecture the Java engine does not implement (pooling or a dense head, such as
    ``paper``): its bundle then has no ImageJ model, and the plugin says so.
    """
    from focusnet.defocus import defocus_scale, level_blur_um
    from focusnet.inference import model_optics, objective_optics

    architecture = model.architecture
    if architecture.head != "global_average" or any(conv.pool for conv in architecture.convs):
        return None
    lens = objective_optics(model)
    scale = defocus_scale(model_optics(model), lens)
    lines = ["# focusnet's patch classifier for the ImageJ plugin (plain Java); written by focusnet export",
             f"format={IMAGEJ_MODEL_FORMAT}", f"format_version={IMAGEJ_MODEL_FORMAT_VERSION}",
             f"focusnet_version={__version__}", f"architecture={architecture.name}", f"head={architecture.head}",
             f"patch_size={PATCH_SIZE}", f"num_levels={NUM_LEVELS}", f"input_scale={INPUT_SCALE!r}",
             f"pixel_size_um={model_optics(model).pixel_size_um!r}",
             "defocus_um.levels=" + ",".join(repr(float(level)) for level in scale.levels),
             "defocus_um.micrometres=" + ",".join(repr(float(um)) for um in scale.micrometres),
             # For another objective the plugin matches its blur to these (focusnet.defocus.defocus_scale).
             "defocus_um.target_blur=" + ",".join(repr(float(um)) for um in level_blur_um(model_optics(model))),
             f"objective.wavelength_um={lens.wavelength_um!r}",
             f"objective.numerical_aperture={lens.numerical_aperture!r}",
             f"objective.refractive_index={lens.refractive_index!r}"]
    for index, conv in enumerate(architecture.convs):
        lines.append(f"conv{index}.stride={conv.stride}")
        lines += _array(f"conv{index}.kernel", model.weights[f"conv{index}/kernel"])
        lines += _array(f"conv{index}.bias", model.weights[f"conv{index}/bias"])
    lines += _array("levels.kernel", model.weights["levels/kernel"])
    lines += _array("levels.bias", model.weights["levels/bias"])
    return "\n".join(lines) + "\n"
