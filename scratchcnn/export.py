"""Export a saved model as ONNX, for OpenCV's DNN module and onnxruntime.

``python -m scratchcnn.export MODEL.npz MODEL.onnx`` writes it.

The exported file runs in OpenCV's DNN module (``cv2.dnn.readNetFromONNX``) and in onnxruntime with
the same logits (see :mod:`scratchcnn.nn.export`); ``examples/webcam.py --model MODEL.onnx`` reads
digits with it. Needs the onnx package: ``pip install "scratchcnn[export]"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scratchcnn.cli import run_cli
from scratchcnn.nn.export import export_onnx
from scratchcnn.nn.serialization import load_model

PROG = "python -m scratchcnn.export"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "model", type=Path, help="a model saved by scratchcnn (e.g. models/scratchcnn.npz)"
    )
    p.add_argument("output", type=Path, help="the ONNX file to write (e.g. models/scratchcnn.onnx)")
    return p.parse_args(argv)


def export(args) -> int:
    model = load_model(args.model)
    export_onnx(model, args.output)
    print(
        f"wrote {args.output}: {type(model).__name__} of {len(model.layers)} layers, "
        f"{model.count_params():,} parameters, input (batch, {', '.join(map(str, model.input_shape))}) "
        f"-> logits (batch, {', '.join(map(str, model.output_shape))})"
    )
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_cli(PROG, lambda: export(args))


if __name__ == "__main__":
    sys.exit(main())
