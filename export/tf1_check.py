"""Load a focusnet bundle exactly as Fiji's plugin does, in a TensorFlow 1 runtime.

Runs under Python 3.6/3.7 with tensorflow 1.12.3 / 1.15.5 (the Python wheels of
Fiji's TensorFlow-Java runtimes); it imports nothing from focusnet.

    python export/tf1_check.py BUNDLE.zip INPUT.npy OUTPUT.npz

1. Unzip like Fiji: entries in zip order, a folder only from its own
   directory entry (no parent folders are created for files).
2. Load the SavedModel with tag "inference", read signature
   "serving_default", strip the ":0" of its tensor names.
3. Feed INPUT.npy (float32 [rows*84, cols*84], raw counts / 65535) by op
   name and fetch "probabilities" and "patches" by op name.
4. Write them to OUTPUT.npz, with the TensorFlow version.
"""

import os
import sys
import tempfile
import zipfile

import numpy as np
import tensorflow as tf


def fiji_unzip(zip_path, target):
    with zipfile.ZipFile(zip_path) as archive:
        for entry in archive.infolist():
            path = os.path.join(target, entry.filename)
            if entry.filename.endswith("/"):
                os.mkdir(path)  # parents must already exist, as in Fiji
            else:
                with open(path, "wb") as handle:  # fails if the folder entry came later
                    handle.write(archive.read(entry))


def op_name(tensor_name):
    return tensor_name[:-2] if tensor_name.endswith(":0") else tensor_name


def main(bundle, input_path, output_path):
    image = np.load(input_path).astype(np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        fiji_unzip(bundle, scratch)
        graph = tf.Graph()
        with tf.Session(graph=graph) as session:
            meta_graph = tf.saved_model.loader.load(session, ["inference"], scratch)
            signature = meta_graph.signature_def["serving_default"]
            input_op = op_name(signature.inputs["input"].name)
            fetch_ops = [op_name(signature.outputs[key].name) for key in ("probabilities", "patches")]
            feed = {graph.get_operation_by_name(input_op).outputs[0]: image}
            fetches = [graph.get_operation_by_name(name).outputs[0] for name in fetch_ops]
            probabilities, patches = session.run(fetches, feed_dict=feed)
    np.savez(output_path, probabilities=probabilities, patches=patches, tensorflow_version=tf.__version__,
             input_op=input_op, fetch_ops=np.array(fetch_ops))
    print("TensorFlow %s: %d patches, ops %s -> %s" % (tf.__version__, len(probabilities), input_op, fetch_ops))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
