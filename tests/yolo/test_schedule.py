"""The [net] schedule: darknet's get_current_rate for each policy, and its SGD update rule."""
import numpy as np
import pytest
import torch

from tritnet.darknet import parse_cfg_string
from tritnet.darknet.network import DarknetNet
from tritnet.yolo import learning_rate, make_optimizer
from tritnet.yolo.schedule import set_rate


def net_section(**keys):
    body = "".join(f"{k}={v}\n" for k, v in keys.items())
    return parse_cfg_string(f"[net]\nwidth=4\nheight=4\nchannels=1\n{body}[convolutional]\nfilters=1\nsize=1\n").net


@pytest.mark.parametrize("keys,batch,rate", [
    (dict(learning_rate=.001, burn_in=1000, power=4, policy="constant"), 500, .001 * .5 ** 4),
    (dict(learning_rate=.001, burn_in=1000, policy="constant"), 1000, .001),
    (dict(learning_rate=.1, policy="steps", steps="10,20,30", scales=".1,.5,10"), 9, .1),
    (dict(learning_rate=.1, policy="steps", steps="10,20,30", scales=".1,.5,10"), 10, .01),
    (dict(learning_rate=.1, policy="steps", steps="10,20,30", scales=".1,.5,10"), 25, .005),
    (dict(learning_rate=.1, policy="steps", steps="10,20,30", scales=".1,.5,10"), 31, .05),
    (dict(learning_rate=.1, policy="step", step=100, scale=.5), 250, .025),        # .5^(250/100 = 2)
    (dict(learning_rate=.1, policy="exp", gamma=.9), 3, .1 * .729),
    (dict(learning_rate=.01, policy="poly", power=4, max_batches=100), 50, .01 / 16),
    (dict(learning_rate=.01, policy="poly", max_batches=100), 100, 0.0),
    (dict(learning_rate=.2, policy="sigmoid", gamma=1, step=10), 10, .1),            # .2/(1 + e^0)
])
def test_darknet_rate_policies(keys, batch, rate):
    assert learning_rate(net_section(**keys), batch) == pytest.approx(rate, rel=1e-9, abs=1e-15)


def test_sgd_is_darknets_update_rule():
    """darknet per iteration: u += −Σgrad; u += −decay·B·W; W += (lr/B)·u; u ×= momentum (biases: no decay).
    Run that recurrence by hand next to the torch optimizer fed the batch-mean gradient."""
    cfg = parse_cfg_string("[net]\nwidth=2\nheight=2\nchannels=1\nmomentum=.9\ndecay=.01\nlearning_rate=.1\n"
                           "[convolutional]\nfilters=1\nsize=1\nactivation=linear\n")
    net = DarknetNet(cfg)
    conv = net.layers[0].conv
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.5)
    opt = make_optimizer(net)
    B, lr, m, decay = 4, .1, .9, .01
    w, b, uw, ub = 1.0, 0.5, 0.0, 0.0
    for step, (gw, gb) in enumerate([(2.0, 1.0), (-1.0, 3.0), (0.5, -2.0)]):
        # darknet, by hand, with the summed gradient over B images gw·B
        uw += -gw * B
        uw += -decay * B * w
        ub += -gb * B
        w, b = w + lr / B * uw, b + lr / B * ub
        uw, ub = uw * m, ub * m
        # torch: the loss is divided by B, so the gradient is the batch mean
        conv.weight.grad = torch.full_like(conv.weight, gw)
        conv.bias.grad = torch.full_like(conv.bias, gb)
        set_rate(opt, lr)
        opt.step()
        assert conv.weight.item() == pytest.approx(w, rel=1e-6) and conv.bias.item() == pytest.approx(b, rel=1e-6)


def test_optimizer_groups_decay_weights_only_and_scale_layer_rates():
    cfg = parse_cfg_string("[net]\nwidth=4\nheight=4\nchannels=3\ndecay=.0005\n"
                           "[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"
                           "learning_rate=.1\n[convolutional]\nfilters=2\nsize=1\nactivation=linear\n")
    opt = make_optimizer(DarknetNet(cfg))
    groups = [(g["weight_decay"], g["lr_scale"], [tuple(p.shape) for p in g["params"]]) for g in opt.param_groups]
    assert groups == [(.0005, .1, [(4, 3, 3, 3)]), (0.0, .1, [(4,), (4,)]), (.0005, 1.0, [(2, 4, 1, 1)]),
                      (0.0, 1.0, [(2,)])]
    set_rate(opt, .01)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([.001, .001, .01, .01])
    assert np.isclose(opt.defaults["momentum"], .9)


def test_random_policy_is_within_range_and_repeatable_per_iteration():
    """darknet's random policy, lr·U(0,1)^power: in (0, lr], and the same at an iteration however often it is
    asked (so a resumed run repeats it)."""
    net = net_section(learning_rate=.01, policy="random", power=2)
    rates = [learning_rate(net, b) for b in range(1, 200)]
    assert all(0 < r <= .01 for r in rates) and len(set(rates)) > 150
    assert rates == [learning_rate(net, b) for b in range(1, 200)]
    assert np.mean(rates) == pytest.approx(.01 / 3, rel=0.2)          # E[U²] = 1/3
