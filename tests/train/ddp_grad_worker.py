"""Run by test_distributed.py under torchrun: one backward step through ``tritnet.train.distributed.wrap`` on this
rank's own batch; each process saves the gradients DDP left in its replica."""
import os
import sys

import torch
import torch.nn.functional as F

import tritnet
from tritnet.train import distributed as dist

out = sys.argv[1]
torch.set_num_threads(1)
world = dist.setup()
torch.manual_seed(7)                                    # the same ternary model in every process
model = tritnet.create_model("resnet20")
tritnet.ternarize_(model, method="twn", layers="all")
model.eval()                                            # BN with fixed statistics: each rank's loss is its own batch's
batches = torch.load(os.path.join(out, "batches.pt"), weights_only=True)
x, y = batches["x"][world.rank], batches["y"][world.rank]
net = dist.wrap(model, world, torch.device("cpu"))
F.cross_entropy(net(x), y).backward()
torch.save({n: p.grad for n, p in model.named_parameters()}, os.path.join(out, f"grad{world.rank}.pt"))
dist.teardown(world)
