"""torchrun with 2 CPU processes (gloo): DistributedDataParallel averages the gradients of both ranks' batches and
keeps both replicas identical."""
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import tritnet


def _torchrun(worker: str, *args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(Path(__file__).with_name(worker)), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_gradients_are_the_mean_of_both_ranks_batches(tmp_path):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 4, 3, 32, 32, generator=g), torch.randint(0, 10, (2, 4), generator=g)
    torch.save({"x": x, "y": y}, tmp_path / "batches.pt")
    done = _torchrun("ddp_grad_worker.py", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # the reference, in this process: the same model's gradient on each batch alone, averaged
    torch.manual_seed(7)
    model = tritnet.create_model("resnet20")
    tritnet.ternarize_(model, method="twn", layers="all")
    model.eval()
    alone = []
    for rank in range(2):
        model.zero_grad()
        F.cross_entropy(model(x[rank]), y[rank]).backward()
        alone.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for rank in range(2):
        ddp = torch.load(tmp_path / f"grad{rank}.pt", weights_only=True)
        assert ddp.keys() == alone[0].keys()
        for n in ddp:
            mean = (alone[0][n] + alone[1][n]) / 2
            assert torch.allclose(ddp[n], mean, rtol=1e-4, atol=1e-6), (rank, n)
    # the batches differ, so the mean is neither rank's own gradient
    w = "conv1.weight"
    assert not torch.allclose(alone[0][w], alone[1][w], rtol=1e-2)


def test_two_processes_end_with_the_same_weights(shared_data, tmp_path):
    done = _torchrun("ddp_worker.py", tmp_path, shared_data / "cifar10/cifar10-jpeg.tar.gz")
    assert done.returncode == 0, done.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # they trained: the weights moved away from a fresh model's (DDP's first broadcast makes every replica
    # start from rank 0's initialisation; any model made with the same seed has the same shapes to compare)
    assert (tmp_path / "rank0.txt").read_text().split()[1] == "2"
    fresh = torch.load(tmp_path / "fresh0.pt", weights_only=True)
    moved = [k for k in a if a[k].is_floating_point() and a[k].shape == fresh[k].shape and not torch.equal(a[k], fresh[k])]
    assert "conv1.weight" in moved and "linear.weight" in moved
    assert (tmp_path / "runs" / "ddp" / "weights" / "last.pt").exists()
    assert not (tmp_path / "runs" / "ddp2").exists()  # only rank 0 made a run folder
    rows = (tmp_path / "runs" / "ddp" / "results.csv").read_text().splitlines()
    assert len(rows) == 3  # header + 2 epochs, written once
