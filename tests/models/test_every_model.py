"""Every registered model (``list_models()``, nothing hand-picked) builds, trains a step, exports to the packed
format and runs in tritnet_rt: the exported graph computes what the model computes (float, 1e-4 of the output
range) and the runtime's logits agree with it (int8 activations: correlation above 0.999)."""
import numpy as np
import pytest
import torch

import tritnet
import tritnet_rt
from tritnet.export import save, to_packed, torch_module
from tests.runtime.helpers import random_bn_


@pytest.mark.parametrize("name", tritnet.list_models())
def test_builds_trains_exports_and_runs(name, tmp_path):
    torch.manual_seed(0)
    info = tritnet.models.get_model_info(name)
    model = tritnet.create_model(name)
    c, h, w = info.input_size
    x = torch.randn(2, c, h, w)

    opt = torch.optim.SGD(model.parameters(), lr=0.01)        # one training step moves the weights
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model.train()(x), torch.tensor([0, 1]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))

    model = random_bn_(model.eval())
    if not name.endswith("_sttn"):                            # the STTN models are ternary by construction
        tritnet.ternarize_(model, method="twn", layers="all", per_channel=True)
    pm = to_packed(model)
    with torch.no_grad():
        ref = model(x).numpy()
        graph = torch_module(pm)(x).numpy().reshape(ref.shape)
    assert np.abs(graph - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())

    save(pm, tmp_path / "m.tnp")
    out = tritnet_rt.load(tmp_path / "m.tnp").forward(x.numpy())[0].reshape(ref.shape)
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.999
