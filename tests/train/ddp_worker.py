"""Run by test_distributed.py under torchrun: train briefly, then each process saves the weights it ended with."""
import os
import sys

import torch

from tritnet.train import ClassifierTrainConfig, train_classifier

out, data = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
torch.manual_seed(123)                                   # the same fresh model in both processes (no weights given)
import tritnet  # noqa: E402
fresh = tritnet.create_model("resnet20").state_dict()
torch.manual_seed(0)
r = train_classifier(ClassifierTrainConfig(data=data, model="resnet20", method="twn", train_per_class=8,
                                           valid_per_class=2, epochs=2, batch_size=16, lr=0.05, workers=0,
                                           project=os.path.join(out, "runs"), name="ddp", progress=False))
rank = os.environ["RANK"]
torch.save(r["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))
torch.save(fresh, os.path.join(out, f"fresh{rank}.pt"))
with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
    f.write(f"{r['top1']} {os.environ['WORLD_SIZE']}")
