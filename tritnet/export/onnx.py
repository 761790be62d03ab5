"""ONNX export of the packed graph (through its PyTorch module, so ONNX computes what the runtime
computes), and ONNX Runtime's static QDQ int8 quantization of it for the comparisons of ``tritnet bench``.

The exported graph is static but for the batch: every size is a constant (``torch_graph`` takes them from the
packed graph), darknet's maxpool padding is MaxPool ``pads``, and the only symbolic dimension is the batch,
named ``batch`` on the input and on every output."""
from __future__ import annotations

import os
import warnings

import numpy as np


def export_onnx(pm, path, batch: int | None = None, nms: tuple | None = None) -> str:
    """Write ``pm`` as ONNX (opset 17); the batch dimension is ``batch`` (symbolic) unless a batch is given.
    ``nms=(thresh, iou)``: a detector with its boxes decoded and ONNX's NonMaxSuppression applied
    (``onnx_detect``: outputs boxes, scores, selected), else the raw head inputs (out0, out1, ...)."""
    import torch

    from .torch_graph import GraphModule
    module = GraphModule(pm).eval()
    if nms:
        from .onnx_detect import DetectorModule
        module = DetectorModule(module, pm, *nms).eval()
        outs, dyn_out = ["boxes", "scores", "selected"], {"boxes": {0: "batch"}, "scores": {0: "batch"},
                                                          "selected": {0: "detections"}}
    else:
        outs = [f"out{i}" for i in range(len(pm.graph["outputs"]))]
        dyn_out = {name: {0: "batch"} for name in outs}
    c, h, w = pm.model["input"]["shape"]
    x = torch.zeros(batch or 1, c, h, w)
    dyn = {"input": {0: "batch"}, **dyn_out} if not batch else ({"selected": {0: "detections"}} if nms else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the TorchScript exporter announces its own deprecation
        torch.onnx.export(module, (x,), str(path), input_names=["input"], output_names=outs, dynamic_axes=dyn,
                          opset_version=17, do_constant_folding=True, dynamo=False)
    if nms:                                 # the exporter leaves the decoded outputs' sizes unnamed: state them
        _name_dims(path, {"boxes": ["batch", module.candidates, 4], "scores": ["batch", module.candidates,
                                                                               module.classes]})
    return str(path)


def _name_dims(path, dims: dict) -> None:
    import onnx
    model = onnx.load(str(path))
    for out in model.graph.output:
        for d, value in zip(out.type.tensor_type.shape.dim, dims.get(out.name, [])):
            if isinstance(value, str):
                d.dim_param = value
            else:
                d.dim_value = value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _pre_process(quant_pre_process, src: str, dst: str) -> None:
    """ORT's pre-processing, run in a scratch folder: when its symbolic shape inference gives up (it does on
    yolov4-tiny's channel slices) it leaves sym_shape_infer_temp.onnx and a data file in the working folder and
    raises; then the pre-processing runs again with ONNX's own shape inference only, which the guide allows."""
    import contextlib
    import tempfile
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        try:
            quant_pre_process(src, dst)
        except Exception as e:          # ORT raises a bare Exception here
            if "symbolic shape inference" not in str(e):
                raise
            quant_pre_process(src, dst, skip_symbolic_shape=True)


def quantize_int8(onnx_path, out_path, calibration: np.ndarray) -> str:
    """Static int8 the way ONNX Runtime's quantization guide says
    (https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html): the float model first
    through ``quant_pre_process`` (shape inference and ORT's graph optimisations, so that e.g. Conv+BN is one
    node before calibration), then ``quantize_static`` in the QDQ format the guide recommends, per-channel
    weights (CNNs), uint8 activations and int8 weights (the guide's default for x86; no reduce_range, which
    is for CPUs without VNNI), MinMax ranges from ``calibration`` (real images, one at a time)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": calibration[i:i + 1].astype(np.float32)} for i in range(len(calibration))])

        def get_next(self):
            return next(self.it, None)

    pre = str(out_path) + ".pre.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _pre_process(quant_pre_process, os.path.abspath(onnx_path), os.path.abspath(pre))
            quantize_static(pre, str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        if os.path.exists(pre):
            os.remove(pre)
    return str(out_path)
