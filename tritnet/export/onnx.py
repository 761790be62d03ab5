"""ONNX export of the packed graph (through its PyTorch module, so ONNX computes what the runtime
computes), and ONNX Runtime's static QDQ int8 quantization of it (per-channel weights) for comparisons."""
from __future__ import annotations

import warnings

import numpy as np
import torch


def export_onnx(pm, path, batch: int | None = None) -> str:
    """Write ``pm`` as ONNX (opset 17, batch dimension dynamic unless ``batch`` is given)."""
    from .torch_graph import GraphModule
    module = GraphModule(pm).eval()
    c, h, w = pm.model["input"]["shape"]
    x = torch.zeros(batch or 1, c, h, w)
    outs = [f"out{i}" for i in range(len(pm.graph["outputs"]))]
    dyn = None if batch else {"input": {0: "batch"}, **{o: {0: "batch"} for o in outs}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), input_names=["input"], output_names=outs, dynamic_axes=dyn,
                          opset_version=17, dynamo=False)
    return str(path)


def quantize_int8(onnx_path, out_path, calibration: np.ndarray) -> str:
    """Static QDQ int8 (per-channel weights, activations calibrated on ``calibration`` images)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": calibration[i:i + 1].astype(np.float32)} for i in range(len(calibration))])

        def get_next(self):
            return next(self.it, None)

    pre = str(out_path) + ".pre.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            quant_pre_process(str(onnx_path), pre)
        except Exception:  # pre-processing is an optimisation only
            pre = str(onnx_path)
        quantize_static(pre, str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    import os
    if pre != str(onnx_path) and os.path.exists(pre):
        os.remove(pre)
    return str(out_path)


def ort_session(path, threads: int = 1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
