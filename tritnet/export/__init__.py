"""Export a PyTorch model (CIFAR ResNet, its STTN variant, or a darknet network) to the packed ternary
format that ``tritnet_rt`` runs, and to ONNX; darknet ``.weights`` come from ``DarknetNet.save_weights``.

    pm = tritnet.export.to_packed(model, bits=2)          # or bits=1.6
    tritnet.export.save(pm, "resnet20.tnp")
    tritnet.export.export_onnx(pm, "resnet20.onnx")
"""
from __future__ import annotations

from tritnet_rt.format import PackedModel, encode_packed, graph_shapes, load_packed, save_packed

from ..atomic import write_bytes_atomic
from .graph import export_classifier, export_darknet


def to_packed(model, bits: float = 2, float_dtype: str = "f32", class_names=None, letter_box=None) -> PackedModel:
    """The packed model of a CIFAR ResNet (float, ternary, STTN) or a ``DarknetNet`` (``letter_box``: an AlexeyAB
    detector letterboxes its input as with its ``-letter_box`` flag; by default it stretches it, as its
    ``detector test``)."""
    from tritnet.darknet.network import DarknetNet
    from tritnet.models.darknet_classifier import DarknetClassifier
    if isinstance(model, DarknetClassifier):           # a darknet classifier cfg trained as a classifier
        model = model.net
    if isinstance(model, DarknetNet):
        pm = export_darknet(model, bits, float_dtype, class_names, letter_box)
    else:
        pm = export_classifier(model, bits, float_dtype, class_names)
    graph_shapes(pm, "<export>")           # the graph fits together, as every reader will check
    return pm


def save(pm: PackedModel, path) -> int:
    """Write ``pm`` to ``path`` through tritnet.atomic (a failed write leaves no temporary file); its size."""
    data = encode_packed(pm)
    write_bytes_atomic(path, data)
    return len(data)


def torch_module(pm: PackedModel):
    """The packed graph as a float32 PyTorch module (same values the runtime computes with)."""
    from .torch_graph import GraphModule
    return GraphModule(pm).eval()


def export_onnx(pm: PackedModel, path, batch: int | None = None, nms: tuple | None = None) -> str:
    """ONNX of the packed graph; ``nms=(thresh, iou)`` makes a detector a whole detector (``onnx_detect``)."""
    from .onnx import export_onnx as _export
    return _export(pm, path, batch, nms)


__all__ = ["to_packed", "save", "load_packed", "save_packed", "torch_module", "export_onnx", "PackedModel"]
