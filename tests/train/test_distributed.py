"""torchrun with 2 CPU processes (gloo): DistributedDataParallel keeps both replicas identical."""
import subprocess
import sys
from pathlib import Path

import torch


def test_two_processes_end_with_the_same_weights(shared_data, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           str(tmp_path), str(shared_data / "cifar10/cifar10-jpeg.tar.gz")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
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
