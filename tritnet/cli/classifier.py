"""The classifier verbs of the ``tritnet`` command: ``demo`` (the main job), ``classifier train | valid |
predict`` and ``models``. ``add_parsers(sub)`` adds them; ``VERBS`` maps (verb, action) to the function
running one: argv → one library call → printed result."""
from __future__ import annotations

import argparse
import json

from tritnet_rt.cliargs import (add_prediction_options, existing_file, existing_path, json_option, nonnegative_int,
                                output_dir, positive_float, positive_int, prediction_kwargs, source_list)

from .options import config_from_args, config_options, ternarizer_options


def add_parsers(sub) -> None:
    # ------------------------------------------------------------------ demo (the main job)
    p = sub.add_parser("demo", help="ternarize the pretrained CIFAR ResNet-20 and compare it with float")
    p.add_argument("--data", default=None, help="images (default: DATA_ROOT/cifar10/cifar10-jpeg.tar.gz)")
    p.add_argument("--pretrained", default=None, help="weights (default: DATA_ROOT/pretrained/resnet_cifar10)")
    p.add_argument("--data-root", default=None, help="the data folder (default: $TRITNET_DATA, else data-root "
                   "under [tool.tritnet] in ./pyproject.toml)")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--method", choices=["twn", "ttn", "sttn"], default="twn")
    p.add_argument("--train-per-class", type=positive_int, default=1000,
                   help="training images per class for the fine-tuning (default 1000)")
    p.add_argument("--epochs", type=positive_int, default=2)
    p.add_argument("--lr", type=positive_float, default=0.01)
    p.add_argument("--workers", type=nonnegative_int, default=2)
    p.add_argument("--project", type=output_dir("project folder"), default="runs/demo")
    json_option(p)

    # ------------------------------------------------------------------ classifier train | valid | predict
    cls = sub.add_parser("classifier", help="train, validate and run image classifiers")
    csub = cls.add_subparsers(dest="action", required=True)

    t = csub.add_parser("train", help="train or fine-tune a classifier, float or ternary")
    from ..train.classifier import ClassifierTrainConfig
    config_options(t, ClassifierTrainConfig, positional=("data",), skip=("progress",),
                   checks={"weights": existing_path("weights file or folder"),
                           "teacher": existing_path("teacher checkpoint or folder"),
                           "cache_dir": output_dir("cache folder"), "project": output_dir("project folder"),
                           "resume": existing_path("run folder or checkpoint")})
    t.add_argument("--no-progress", action="store_true")
    json_option(t)

    v = csub.add_parser("valid", help="top-1 / top-5 of a checkpoint on a dataset's test split")
    v.add_argument("data")
    v.add_argument("weights", type=existing_path("checkpoint file or folder"),
                   help="tritnet checkpoint, or pretrained file/folder with --model")
    v.add_argument("--model", default=None, help="architecture, when the weights file does not record it")
    ternarizer_options(v)
    v.add_argument("--valid-per-class", type=positive_int, default=None)
    v.add_argument("--batch-size", type=positive_int, default=256)
    v.add_argument("--workers", type=nonnegative_int, default=2)
    v.add_argument("--cache-dir", type=output_dir("cache folder"), default=None)
    json_option(v)

    pr = csub.add_parser("predict", help="top-5 classes of images, folders, globs or darknet lists",
                         description="tritnet classifier predict WEIGHTS SOURCE..., or darknet's order: "
                                     "tritnet classifier predict DATA CFG WEIGHTS SOURCE... (a SOURCE is an image, "
                                     "a folder, a glob or a darknet list of images)")
    pr.add_argument("args", nargs="+", metavar="[DATA CFG] WEIGHTS SOURCE")
    pr.add_argument("--model", default=None)
    pr.add_argument("--labels", type=existing_file("labels file"), default=None,
                    help="file with one class name per line")
    pr.add_argument("--top", "-t", type=positive_int, default=None,
                    help="classes to print (default: the .data file's top=, else 5)")
    pr.add_argument("--method", choices=["twn", "ttn", "sttn", "float"], default="twn",
                    help="darknet cfgs: ternarizer of the ternary=1 layers (float: the stored values as darknet)")
    add_prediction_options(pr, save_default=False, video=False, sources=False)

    sub.add_parser("models", help="list the built-in models")


def _print(result: dict, as_json: bool, text: str):
    print(json.dumps(result, indent=2) if as_json else text)


def cmd_demo(a):
    from ..demo import run_demo
    from ..paths import data_path
    result = run_demo(a.data or data_path("cifar10/cifar10-jpeg.tar.gz", a.data_root),
                      a.pretrained or data_path("pretrained/resnet_cifar10", a.data_root), model_name=a.model,
                      method=a.method,
                      train_per_class=a.train_per_class, epochs=a.epochs, lr=a.lr, workers=a.workers,
                      project=a.project, progress=not a.json)
    if a.json:
        print(json.dumps(result, indent=2))


def cmd_classifier_train(a):
    from ..train import ClassifierTrainConfig, train_classifier
    cfg = config_from_args(ClassifierTrainConfig, a, progress=not (a.no_progress or a.json))
    r = train_classifier(cfg)
    r.pop("model")
    _print(r, a.json, f"top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  (best top-1 {r['best_top1']:.2f}%)\n"
                      f"run folder: {r['run_dir']}")


def _load_for_eval(weights, model_name, num_classes, a):
    """(model in eval mode, the class names its checkpoint records or None): ``load_model`` of the weights alone
    (a tritnet checkpoint) or of --model with the weights."""
    from ..models import load_model
    opts = dict(method=getattr(a, "method", None), layers=getattr(a, "layers", None),
                per_channel=getattr(a, "per_channel", False), threshold=getattr(a, "threshold", None),
                t_ex=getattr(a, "t_ex", None))
    loaded = (load_model(weights, **opts) if model_name is None else
              load_model(model_name, weights, num_classes=num_classes, **opts))
    return loaded.model, loaded.class_names


def cmd_classifier_valid(a):
    from ..data import build_classification_loaders
    from ..eval import evaluate
    from ..darknet import is_cfg_name
    from ..train.classifier import input_format
    if a.model is None or is_cfg_name(a.model):        # the model knows its input format: build it first
        model, _ = _load_for_eval(a.weights, a.model, None, a)
        info = model.model_info
        fmt = {"mean": info.mean, "std": info.std}
        if info.name.startswith("darknet:"):
            fmt["size"] = info.input_size[1:]
    else:
        model, fmt = None, input_format(a.model)
    data = build_classification_loaders(a.data, batch_size=a.batch_size, workers=a.workers,
                                        valid_per_class=a.valid_per_class, cache_dir=a.cache_dir, train=False,
                                        **fmt)
    if model is None:
        model, _ = _load_for_eval(a.weights, a.model, len(data.class_names), a)
    r = evaluate(model, data.valid)
    _print(r, a.json, f"top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}  "
                      f"({r['images']} images)")


def _split_predict_args(args: list) -> tuple:
    """(data, cfg, weights, sources) of ``predict``'s positional arguments: darknet's order when the first is a
    .data file (or a .cfg comes second), else WEIGHTS SOURCE..."""
    from ..darknet import is_cfg_name
    darknet = len(args) >= 4 and (args[0].endswith(".data") or is_cfg_name(args[1]))
    if darknet:
        return args[0], args[1], args[2], args[3:]
    if len(args) < 2:
        raise ValueError(f"predict takes WEIGHTS SOURCE... or DATA CFG WEIGHTS SOURCE..., got {len(args)} "
                         "argument(s)")
    return None, None, args[0], args[1:]


def cmd_classifier_predict(a):
    data, cfg, weights, specs = _split_predict_args(a.args)
    # one nargs list, so the parser cannot tell which is which: the same checks, applied here
    if data is not None:
        existing_file(".data file")(data)
        existing_file("cfg file")(cfg)
    existing_path("weights file or folder")(weights)
    sources = source_list(a, specs)
    from ..darknet import is_cfg_name
    if data is None and a.model and is_cfg_name(a.model):
        data, cfg = None, a.model
    if cfg is not None:
        return _predict_darknet(a, data, cfg, weights, sources)
    import torch
    from tritnet_rt.sources import draw_top, predict

    from ..data import load_image_for_model
    from ..darknet import read_names
    labels = read_names(a.labels) if a.labels else None
    model, names = _load_for_eval(weights, a.model, len(labels) if labels else None,
                                  argparse.Namespace(method=None))
    info = model.model_info
    k = a.top or 5

    def infer(frame):
        if frame.path is not None:       # as `classifier valid` reads it (the same decoder, the same resize)
            x = load_image_for_model(frame.path, info.input_size[1:], info.mean, info.std)
        else:
            x = _tensor_of(frame.rgb, info)
        with torch.no_grad():
            probs = torch.softmax(model(x[None]), dim=1)[0]
        all_names = labels or names or [str(i) for i in range(len(probs))]
        top = probs.topk(min(k, len(probs)))
        top = [{"class": all_names[int(i)], "index": int(i), "probability": float(p)}
               for p, i in zip(top.values, top.indices)]
        return ({"top": top}, [f"{t['probability'] * 100:6.2f}%: {t['class']}" for t in top],
                lambda im: draw_top(im, top))
    predict(sources, infer, **prediction_kwargs(a))


def _tensor_of(rgb, info):
    """A decoded picture (a video frame) as ``load_image_for_model`` makes an image file: resized bilinear."""
    import numpy as np
    from PIL import Image

    from ..data.transforms import normalize, to_tensor
    h, w = info.input_size[1:]
    im = Image.fromarray(rgb)
    if im.size != (w, h):
        im = im.resize((w, h), Image.BILINEAR)
    return normalize(to_tensor(np.asarray(im)), info.mean, info.std)


def _predict_darknet(a, data, cfg, weights, sources):
    """A darknet classifier cfg: darknet's input, forward, darknet's top-k, printed as darknet prints it."""
    import torch
    from tritnet_rt.detect import from_uint8
    from tritnet_rt.sources import draw_top, predict

    from ..darknet import build_darknet, format_classifier_line, names_from_data, read_names
    from ..darknet.datafile import read_data_cfg
    from ..darknet.predict import classifier_input, top_k
    from ..quant import method_name
    names = read_names(a.labels) if a.labels else (names_from_data(data) if data else None)
    k = a.top or ((read_data_cfg(data).top or 5) if data else 5)          # darknet: -t, else the .data's top
    net = build_darknet(cfg, weights, method_name(a.method))

    def infer(frame):
        with torch.no_grad():
            out = net(classifier_input(net, from_uint8(frame.rgb)))[0].reshape(-1).float().cpu().numpy()
        labels = list(names) if names is not None else [str(i) for i in range(out.size)]
        if len(labels) < out.size:
            raise ValueError(f"{a.labels or data}: {len(labels)} labels for the {out.size} outputs of {cfg}")
        top = [(labels[i], float(out[i])) for i in top_k(out.tolist(), min(k, out.size))]
        records = [{"class": n, "value": v} for n, v in top]
        return ({"top": records}, [format_classifier_line(n, v) for n, v in top],
                lambda im: draw_top(im, records, key="value"))
    predict(sources, infer, **prediction_kwargs(a))


def cmd_models(a):
    from ..models import get_model_info, list_models
    for name in list_models():
        info = get_model_info(name)
        print(f"{name:<16} {'x'.join(map(str, info.input_size)):<12} {info.notes}")


VERBS = {("demo", None): cmd_demo, ("classifier", "train"): cmd_classifier_train,
         ("classifier", "valid"): cmd_classifier_valid, ("classifier", "predict"): cmd_classifier_predict,
         ("models", None): cmd_models}
