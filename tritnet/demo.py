"""The main job: ternarize a pretrained CIFAR ResNet and show what it costs and what it saves.

1. score the pretrained float model on the CIFAR-10 test set;
2. ternarize every layer (TWN by default) and score it as it is, then with its batch-norm statistics
   re-estimated (a few forward passes, no training);
3. fine-tune the ternary model for a small budget (the float shadow weights learn, the forward is ternary);
4. print float top-1, ternary top-1 and the weight size in float32 and packed at 2 bits, side by side.
"""
from __future__ import annotations

import time

from tqdm import tqdm

from .eval import evaluate
from .models import create_model
from .nn import ternarize_
from .nn.size import model_size
from .train import ClassifierTrainConfig, train_classifier
from .train.calibrate import recalibrate_batchnorm


def run_demo(data: str, pretrained: str, model_name: str = "resnet20", method: str = "twn",
             train_per_class: int = 1000, epochs: int = 2, lr: float = 0.01, workers: int = 2,
             project: str = "runs/demo", progress: bool = True) -> dict:
    from .data import build_classification_loaders

    say = tqdm.write if progress else (lambda *a, **k: None)
    t_start = time.time()
    test = build_classification_loaders(data, batch_size=500, workers=workers, train_per_class=train_per_class)
    bar = (lambda it: tqdm(it, desc="evaluating", leave=False, unit="batch")) if progress else None

    model = create_model(model_name, pretrained=pretrained, num_classes=len(test.class_names)).eval()
    float_metrics = evaluate(model, test.valid, progress=bar)
    say(f"float {model_name}: top-1 {float_metrics['top1']:.2f}% on {float_metrics['images']} test images")

    ternarize_(model, method=method, layers="all")
    direct_metrics = evaluate(model, test.valid, progress=bar)
    say(f"{method.upper()} ternary, no training: top-1 {direct_metrics['top1']:.2f}%")
    recalibrate_batchnorm(model, test.train, batches=20)
    recal_metrics = evaluate(model, test.valid, progress=bar)
    say(f"{method.upper()} ternary, batch-norm statistics re-estimated: top-1 {recal_metrics['top1']:.2f}%")

    cfg = ClassifierTrainConfig(data=data, model=model_name, weights=pretrained, method=method, layers="all",
                                epochs=epochs, lr=lr, train_per_class=train_per_class, workers=workers,
                                project=project, name=f"{model_name}_{method}", progress=progress)
    result = train_classifier(cfg)

    sizes_float = model_size(create_model(model_name, num_classes=len(test.class_names)))
    sizes = model_size(model)
    report = {
        "model": model_name, "method": method, "test_images": float_metrics["images"],
        "float_top1": round(float_metrics["top1"], 2),
        "ternary_top1_untrained": round(direct_metrics["top1"], 2),
        "ternary_top1_bn_recalibrated": round(recal_metrics["top1"], 2),
        "ternary_top1": round(result["top1"], 2), "ternary_top5": round(result["top5"], 2),
        "fine_tune": {"epochs": epochs, "train_images": train_per_class * len(test.class_names), "lr": lr},
        "weights_float32_bytes": sizes_float["float32_bytes"], "weights_2bit_bytes": sizes["packed_2bit_bytes"],
        "weights_1.6bit_bytes": sizes["packed_1.6bit_bytes"],
        "run_dir": result["run_dir"], "seconds": round(time.time() - t_start, 1),
    }
    if progress:
        ratio = report["weights_float32_bytes"] / report["weights_2bit_bytes"]
        print()
        print(f"{'':24}{'float32':>12}{method.upper() + ' ternary':>16}")
        print(f"{'top-1 (CIFAR-10 test)':24}{report['float_top1']:>11.2f}%{report['ternary_top1']:>15.2f}%")
        print(f"{'weights (bytes)':24}{report['weights_float32_bytes']:>12,}{report['weights_2bit_bytes']:>16,}"
              f"   ({ratio:.1f}x smaller at 2 bits; {report['weights_1.6bit_bytes']:,} at 1.6 bits)")
        print(f"without fine-tuning the ternary model scores {report['ternary_top1_untrained']:.2f}% "
              f"({report['ternary_top1_bn_recalibrated']:.2f}% with batch-norm statistics re-estimated); "
              f"fine-tuned {epochs} epochs on {report['fine_tune']['train_images']} images; "
              f"{report['seconds']:.0f} s in all; run folder {report['run_dir']}")
    return report
