"""Test helper: load a focusnet bundle exactly as Fiji's plugin does, in a TensorFlow 1 runtime.

Runs under Python 3.6/3.7 with tensorflow 1.12.3 / 1.15.5 (the Python wheels of
Fiji's TensorFlow-Java runtimes); it imports nothing from focusnet, so the
names it looks for are given by the test, from ``focusnet.contract``.

    python tests/tf1_check.py BUNDLE.zip INPUT.npy OUTPUT.npz TAG SIGNATURE INPUT_KEY OUTPUT_KEY...

1. Unzip like Fiji: entries in zip order, a folder only from its own
   directory entry (no parent folders are created for files).
2. Load the SavedModel with tag TAG, read signature SIGNATURE, strip the
   ":0" of its tensor names.
3. Feed INPUT.npy (float32 [rows*84, cols*84], raw counts / 65535) to
   INPUT_KEY by op name and fetch the OUTPUT_KEYs by op name.
4. Write them to OUTPUT.npz under their keys, with the TensorFlow version.
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


def main(bundle, input_path, output_path, tag, signature_name, input_key, *output_keys):
    image = np.load(input_path).astype(np.float32)
    with tempfile.TemporaryDirectory() as scratch:
        fiji_unzip(bundle, scratch)
        graph = tf.Graph()
        with tf.Session(graph=graph) as session:
            meta_graph = tf.saved_model.loader.load(session, [tag], scratch)
            signature = meta_graph.signature_def[signature_name]
            input_op = op_name(signature.inputs[input_key].name)
            fetch_ops = [op_name(signature.outputs[key].name) for key in output_keys]
            feed = {graph.get_operation_by_name(input_op).outputs[0]: image}
            fetches = [graph.get_operation_by_name(name).outputs[0] for name in fetch_ops]
            outputs = session.run(fetches, feed_dict=feed)
    np.savez(output_path, tensorflow_version=tf.__version__, input_op=input_op, fetch_ops=np.array(fetch_ops),
             **dict(zip(output_keys, outputs)))
    print("TensorFlow %s: %d rows, ops %s -> %s" % (tf.__version__, len(outputs[0]), input_op, fetch_ops))


if __name__ == "__main__":
    if len(sys.argv) < 8:
        sys.exit(__doc__)
    main(*sys.argv[1:])
