"""The shipped classifier's network on every runtime installed here, side by side (issue: speed).

The patches of one 2048 x 2048 16-bit image (84 x 84 tiles of real in-focus images; 576 patches)
go through the same network on each runtime that can be imported, one process, each warmed up
once and then timed seven times (median), in batches of ``--batch`` patches:

* TensorFlow: the model folder (focusnet's own path);
* onnxruntime: ``default.onnx`` with default session options, and with the intra-op threads
  set to the CPUs this process may use;
* onnxruntime with 8-bit weights (``onnxruntime.quantization.quantize_dynamic`` of
  ``default.onnx``, uint8: only a candidate if the levels stay identical and the probabilities
  within 1e-3);
* OpenVINO (``openvino``): ``default.onnx`` read directly, 32-bit float precision asked for;
* LiteRT with XNNPACK (``ai-edge-litert``): the folder converted by TensorFlow's TFLite
  converter (needs TensorFlow here), fixed batch, zero-padded last batch.

Reported per runtime: the import time of its module (in this process: modules imported earlier
make later imports cheaper, so it is a lower bound except for the first), seconds per image for
the network alone, the largest difference of a probability from TensorFlow's, and how many
patches' most probable level differs from TensorFlow's. Runtimes that
are not installed are listed as such.

Usage::

    python benchmarks/runtimes.py [--json OUT.json] [--batch N]
"""

import argparse
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import in_focus_sources, machine, tiled_image  # noqa: E402


def timed_import(name):
    start = time.perf_counter()
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None, None
    return module, time.perf_counter() - start


def median_seconds(run, repeats=7):
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def batched(predict, patches, batch):
    return np.concatenate([predict(patches[start:start + batch]) for start in range(0, len(patches), batch)])


def litert_predict(model, batch, scratch):
    """A LiteRT interpreter (XNNPACK) of the model folder, for batches of at most ``batch`` patches."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from focusnet.contract import PATCH_SIZE
    from focusnet.network import inference_graph

    constants = {name: tf.constant(value) for name, value in model.weights.items()}

    @tf.function(input_signature=[tf.TensorSpec([batch, PATCH_SIZE, PATCH_SIZE, 1], tf.float32)])
    def network(patches):
        return inference_graph(patches, constants, model.architecture)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([network.get_concrete_function()], network)
    path = Path(scratch) / "model.tflite"
    path.write_bytes(converter.convert())
    interpreter = Interpreter(model_path=str(path), num_threads=len(os.sched_getaffinity(0)))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def predict(patches):
        count = len(patches)
        if count < batch:
            patches = np.concatenate([patches, np.zeros((batch - count,) + patches.shape[1:], np.float32)])
        interpreter.set_tensor(source, patches)
        interpreter.invoke()
        return interpreter.get_tensor(target)[:count].copy()

    return predict


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    parser.add_argument("--batch", type=int, default=64)
    arguments = parser.parse_args()

    from focusnet.contract import SHIPPED_MODEL_DIR, SHIPPED_ONNX
    from focusnet.inference import extract_patches, tile_starts

    image = tiled_image(2048, 2048, in_focus_sources())
    positions = [(y, x) for y in tile_starts(2048) for x in tile_starts(2048)]
    patches = extract_patches(image, positions).astype(np.float32)[..., None]
    rows, reference = [], None

    def add(name, import_s, predict, version):
        nonlocal reference
        seconds, probabilities = median_seconds(lambda: batched(predict, patches, arguments.batch))
        if reference is None:
            reference = probabilities
        rows.append({"runtime": name, "version": version, "import_s": import_s, "seconds_per_image": seconds,
                     "max_difference": float(np.abs(probabilities - reference).max()),
                     "levels_changed": int((probabilities.argmax(1) != reference.argmax(1)).sum())})

    tensorflow, import_s = timed_import("tensorflow")
    from focusnet.loader import load_model

    folder = load_model(SHIPPED_MODEL_DIR)
    if tensorflow is not None:
        add("TensorFlow (model folder)", import_s, folder.predict_patches, tensorflow.__version__)
    onnxruntime, import_s = timed_import("onnxruntime")
    if onnxruntime is not None:
        for label, threads in (("default options", 0), ("intra-op threads = CPUs", len(os.sched_getaffinity(0)))):
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(str(SHIPPED_ONNX), options, providers=["CPUExecutionProvider"])
            add(f"onnxruntime ({label})", import_s,
                lambda batch, session=session: session.run(["probabilities"], {"patches": batch})[0],
                onnxruntime.__version__)
            import_s = None
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as scratch:
            quantised = Path(scratch) / "int8.onnx"
            # uint8 weights: onnxruntime's CPU provider has no ConvInteger for the default int8 ones.
            quantize_dynamic(str(SHIPPED_ONNX), str(quantised), weight_type=QuantType.QUInt8)
            session = onnxruntime.InferenceSession(str(quantised), providers=["CPUExecutionProvider"])
        add("onnxruntime, 8-bit weights (dynamic quantisation)", None,
            lambda batch: session.run(["probabilities"], {"patches": batch})[0], onnxruntime.__version__)
    openvino, import_s = timed_import("openvino")
    if openvino is not None:
        compiled = openvino.Core().compile_model(str(SHIPPED_ONNX), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        add("OpenVINO (default.onnx, f32)", import_s, lambda batch: compiled(batch)[0], openvino.__version__)
    litert, import_s = timed_import("ai_edge_litert.interpreter")
    if litert is not None and tensorflow is not None:
        import ai_edge_litert

        with tempfile.TemporaryDirectory() as scratch:
            add("LiteRT + XNNPACK (converted folder)", import_s, litert_predict(folder, arguments.batch, scratch),
                getattr(ai_edge_litert, "__version__", "installed"))
    missing = [name for name, module in (("openvino", openvino), ("ai-edge-litert", litert)) if module is None]
    print(f"The shipped network on the 576 patches of one 2048 x 2048 image, batches of {arguments.batch} "
          f"({machine()})" + (f"; not installed here: {', '.join(missing)}" if missing else "") + "\n")
    print("| runtime | version | import | network, s per image | vs TensorFlow | largest probability difference "
          "| levels changed |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        imported = "-" if row["import_s"] is None else f"{row['import_s']:.2f} s"
        speed = rows[0]["seconds_per_image"] / row["seconds_per_image"]
        print(f"| {row['runtime']} | {row['version']} | {imported} | {row['seconds_per_image']:.3f} | {speed:.2f}x | "
              f"{row['max_difference']:.1e} | {row['levels_changed']} of {len(patches)} |")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"machine": machine(), "batch": arguments.batch,
                                                    "not_installed": missing, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
