"""Check exported model folders with the reference ONNX tools (not needed by the build).

    pip install onnx onnxruntime
    python3 models/check_onnx.py models/default models/default-f32

For each graph: the ONNX checker with full shape inference, then one onnxruntime (CPU)
run on a seeded random input, printing the outputs' names, shapes and largest |value|.
"""

import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def check(folder: str) -> None:
    for name in ("stage1.onnx", "stage2.onnx"):
        path = os.path.join(folder, name)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {
            i.name: rng.uniform(-1.0, 1.0, list(i.shape)).astype(np.float32)
            for i in session.get_inputs()
        }
        outputs = session.run(None, feeds)
        summary = ", ".join(
            f"{o.name} {list(v.shape)} max|x| {float(np.abs(v).max()):.3f}"
            for o, v in zip(session.get_outputs(), outputs)
        )
        print(f"{path}: checker ok, onnxruntime {ort.__version__} ok: {summary}")


if __name__ == "__main__":
    for folder in sys.argv[1:] or ["models/default"]:
        check(folder)
