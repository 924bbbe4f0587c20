"""``focusnet export``: a model as a SavedModel bundle, an ONNX file or a bioimage.io package."""

from __future__ import annotations

from .. import contract
from .arguments import add_model

#: What ``--format`` writes, in words.
FORMATS = {
    "bundle": "the TensorFlow 1 SavedModel bundle for Fiji and CellProfiler (default)",
    "onnx": "the patch classifier as MODEL.onnx for onnxruntime (no TensorFlow needed to measure)",
    "bioimageio": "a bioimage.io model package NAME.zip (TensorFlow and ONNX weights)",
}


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="write a model as a SavedModel bundle (Fiji, CellProfiler), ONNX file or bioimage.io package",
        description=f"Write a model as a TensorFlow 1 SavedModel bundle (tag '{contract.BUNDLE_TAG}', signature "
        f"'{contract.BUNDLE_SIGNATURE}': input '{contract.BUNDLE_INPUT_KEY}' "
        f"{contract.BUNDLE_INPUT_SPEC['shape']} {contract.BUNDLE_INPUT_SPEC['values']} -> outputs "
        + ", ".join(f"'{key}' {shape}" for key, shape in contract.BUNDLE_OUTPUT_SPECS.items())
        + ") that Fiji's Microscope Image Focus Quality plugin (TensorFlow 1.12-1.15), "
        "the MeasureImageFocus CellProfiler plugin and 'focusnet predict --model' load, with a "
        f"{contract.MANIFEST_FILE} manifest holding the SHA-256 of every file; or as an ONNX file or a bioimage.io "
        "package (--format).",
    )
    add_model(parser, "export")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="PATH.zip for a zip (as Fiji downloads it), otherwise an unzipped bundle folder")
    parser.add_argument("--format", dest="export_format", choices=list(FORMATS), default="bundle",
                        help="; ".join(f"{name}: {text}" for name, text in FORMATS.items()))
    parser.add_argument("--refocus-model", metavar="MODEL_DIR", nargs="?", const="shipped",
                        help="export a refocus model folder instead (alone: the shipped one), with --format onnx "
                             "(image to image, for onnxruntime) or bioimageio (for deepImageJ and bioimageio.core)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output at PATH (without it, an existing PATH is refused)")
    parser.set_defaults(run=run)


def _export_refocus(arguments) -> int:
    from ..errors import ExportError
    from ..export.refocus_export import export_refocus_bioimageio, export_refocus_onnx

    model = None if arguments.refocus_model == "shipped" else arguments.refocus_model
    if arguments.export_format == "bundle":
        raise ExportError("a refocus model is exported as ONNX or as a bioimage.io package, not as a TensorFlow "
                          "bundle", setting="export_format")
    if arguments.export_format == "onnx":
        out = export_refocus_onnx(model, arguments.out, overwrite=arguments.overwrite)
        print(f"refocus ONNX model written to {out} (focusnet refocus --refocus-model {out})")
    else:
        out = export_refocus_bioimageio(model, arguments.out, overwrite=arguments.overwrite)
        print(f"bioimage.io package written to {out} (check it with: bioimageio test {out})")
    return 0


def run(arguments) -> int:
    if arguments.refocus_model:
        return _export_refocus(arguments)
    if arguments.export_format == "bioimageio":
        from ..export.bioimageio_package import export_bioimageio

        out = export_bioimageio(arguments.model, arguments.out, overwrite=arguments.overwrite)
        print(f"bioimage.io package written to {out} (check it with: bioimageio test {out})")
        return 0
    if arguments.export_format == "onnx":
        from ..export.onnxexport import export_onnx

        out = export_onnx(arguments.model, arguments.out, overwrite=arguments.overwrite)
        print(f"ONNX model written to {out}: measure with it where TensorFlow is not installed "
              f"(pip install 'focusnet[onnx]'; focusnet predict --model {out})")
        return 0
    from ..export import export_bundle

    out = export_bundle(arguments.model, arguments.out, overwrite=arguments.overwrite)
    kind = "zip" if out.suffix.lower() == ".zip" else "folder"
    print(f"bundle ({kind}) written to {out}")
    if kind == "zip":
        print("Fiji: unzip it into Fiji.app/models/microscope-image-quality/ (see docs/fiji.md).")
    return 0
