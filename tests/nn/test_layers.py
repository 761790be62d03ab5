"""Ternary layers: drop-in behaviour, STTN pair ≡ merged ternary conv, in-place conversion and its report."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import tritnet
from tritnet.nn import TernaryConv2d, TernaryLinear, merge_sttn_, select_layers
from tritnet.quant import STTNConfig, TTNConfig, TWNConfig, sttn_binary_weights


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))


def test_ternary_conv_computes_with_ternary_weight_in_train_and_eval():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    t = TernaryConv2d.from_float(conv, TWNConfig())
    x = torch.randn(2, 4, 8, 8)
    codes, alpha = t.ternary_codes()
    expected = F.conv2d(x, codes.float() * alpha, conv.bias, padding=1)
    for mode in (True, False):
        t.train(mode)
        with torch.no_grad():
            assert torch.allclose(t(x), expected, atol=1e-5)
    assert torch.equal(t.weight, conv.weight)  # the float shadow is kept
    assert set(codes.unique().tolist()) <= {-1, 0, 1}


def test_eval_cache_follows_weight_updates():
    t = TernaryLinear.from_float(nn.Linear(8, 4), TWNConfig()).eval()
    x = torch.randn(3, 8)
    with torch.no_grad():
        y0 = t(x)
        t.weight.mul_(-1)  # in-place change, as an optimizer step does
        y1 = t(x)
    assert torch.allclose(y1 - t.bias, -(y0 - t.bias), atol=1e-6)


def test_gradients_reach_the_float_weights():
    net = tritnet.ternarize_(small_net(), method="ttn")
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    for m in net.modules():
        if isinstance(m, (TernaryConv2d, TernaryLinear)):
            assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("config,window", [(TWNConfig(), False), (TWNConfig(per_channel=True), False),
                                           (TTNConfig(), True)], ids=["twn", "twn-per-channel", "ttn"])
def test_the_shadow_gradient_is_the_straight_through_rule(config, window):
    """∂L/∂W is ∂L/∂(α·T) passed straight through: unchanged for TWN, zeroed where |W| ≥ 1 for TTN (its
    code's clipped estimator, methods.md 2.1); computed here from a plain linear on α·T as a leaf tensor."""
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    with torch.no_grad():
        lin.weight.mul_(6)                                  # some weights outside [-1, 1]
    t = TernaryLinear.from_float(lin, config)
    x, g = torch.randn(3, 8), torch.randn(3, 4)
    (t(x) * g).sum().backward()
    q = t.ternary_weight().detach().clone().requires_grad_(True)
    (F.linear(x, q, t.bias) * g).sum().backward()
    outside = t.weight.detach().abs() >= 1
    assert outside.any() and not outside.all()
    torch.testing.assert_close(t.weight.grad, q.grad * ~outside if window else q.grad)


def test_sttn_pair_equals_merged_ternary_conv():
    torch.manual_seed(1)
    pair = TernaryConv2d.from_float(nn.Conv2d(8, 12, 3, padding=1, bias=True), STTNConfig())
    with torch.no_grad():  # a pair that has trained away from its initial split
        pair.weight.copy_(torch.rand_like(pair.weight) * 2 - 1)
        pair.weight2.copy_(torch.rand_like(pair.weight2) * 2 - 1)
    x = torch.randn(3, 8, 10, 10)
    b1, b2 = sttn_binary_weights(pair.weight, pair.weight2)
    two_binary_convs = F.conv2d(x, b1, pair.bias, padding=1) + F.conv2d(x, b2, None, padding=1)
    merged = pair.merge().eval()
    with torch.no_grad():
        assert torch.allclose(pair.eval()(x), two_binary_convs, atol=1e-5)
        assert torch.allclose(merged(x), two_binary_convs, atol=1e-5)
    codes, scale = merged.ternary_codes()
    assert scale.shape == (12, 1, 1, 1) and set(codes.unique().tolist()) <= {-1, 0, 1}
    # the binary filters are ±m with m the shared per-channel scale; T = B1 + B2 has values {0, ±2m}
    assert torch.allclose(b1.abs().amax(dim=(1, 2, 3)), b2.abs().amax(dim=(1, 2, 3)))


def test_sttn_keeps_float_weights_past_the_window_and_masks_their_sign_gradient():
    """STTN trains as its paper: no clamp; a weight outside [-clip, clip] keeps its value and gets only the
    shared scale's gradient term (its sign's straight-through window is closed)."""
    pair = TernaryConv2d(2, 2, 1, bias=False, config=STTNConfig())
    with torch.no_grad():
        pair.weight.copy_(torch.tensor([[3.0, -0.5], [0.5, 0.5]]).view(2, 2, 1, 1))
        pair.weight2.copy_(torch.tensor([[0.5, 0.5], [-0.5, 0.5]]).view(2, 2, 1, 1))
    x = torch.tensor([[1.0, 2.0]]).view(1, 2, 1, 1)
    pair.train()(x).sum().backward()
    assert pair.weight[0, 0].item() == 3.0                       # not clamped
    # g = ∂L/∂T = x = (1, 2) for every output channel; channel 0: s1 + s2 = (2, 0), shared = 2·1/4 = 0.5
    assert torch.allclose(pair.weight.grad[0].flatten(), torch.tensor([0 + 0.5, 2 - 0.5]))
    assert torch.allclose(pair.weight2.grad[0].flatten(), torch.tensor([1 + 0.5, 2 + 0.5]))


def test_sttn_split_starts_as_the_per_channel_twn_of_the_float_layer():
    torch.manual_seed(2)
    conv = nn.Conv2d(16, 16, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.2, 3, 16).view(16, 1, 1, 1))  # channels of different magnitude
    pair = TernaryConv2d.from_float(conv, STTNConfig())
    # independent reference: per-channel TWN by hand (Δ_k = 0.7·mean|W_k|, α_k = mean|W_k| over |W_k| > Δ_k)
    w = conv.weight.detach().double()
    delta = 0.7 * w.abs().mean(dim=(1, 2, 3), keepdim=True)
    kept = w.abs() > delta
    alpha = (w.abs() * kept).sum(dim=(1, 2, 3), keepdim=True) / kept.sum(dim=(1, 2, 3), keepdim=True)
    reference = (torch.sign(w) * kept * alpha).float()
    assert torch.allclose(pair.to_float().weight, reference, atol=1e-6)
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        assert torch.allclose(pair.eval()(x), F.conv2d(x, reference, conv.bias), atol=1e-4)
    assert not torch.equal(pair.weight, pair.weight2) and pair.weight.abs().max() <= 1


def test_sttn_weights_past_one_are_used_as_they_are_in_eval_merge_and_codes():
    """An optimiser step can push a float weight past ±1; STTN binarizes it as it is (no clamp), so eval, merge
    and the exported codes must all see the same pair as training."""
    torch.manual_seed(3)
    pair = TernaryConv2d(4, 3, 3, padding=1, bias=False, config=STTNConfig())
    with torch.no_grad():
        pair.weight.copy_(torch.rand_like(pair.weight) * 2 - 1)
        pair.weight2.copy_(torch.rand_like(pair.weight2) * 2 - 1)
        pair.weight[0] += 3.0
        pair.weight2[1] *= 5.0
    w1, w2 = pair.weight.detach(), pair.weight2.detach()
    m = (w1.abs().sum(dim=(1, 2, 3)) + w2.abs().sum(dim=(1, 2, 3))) / (2 * w1[0].numel())
    reference = (torch.sign(w1) + torch.sign(w2)) * m.view(-1, 1, 1, 1)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.allclose(pair.train()(x), F.conv2d(x, reference, padding=1), atol=1e-5)
        assert torch.allclose(pair.eval()(x), F.conv2d(x, reference, padding=1), atol=1e-5)
        assert torch.allclose(pair.merge().eval()(x), F.conv2d(x, reference, padding=1), atol=1e-5)
    codes, scale = pair.ternary_codes()
    assert torch.allclose(codes.float() * scale, reference, atol=1e-6)


def test_merge_sttn_model():
    net = tritnet.ternarize_(small_net(), method="sttn", layers="all_but_first_last").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        y = net(x)
        merge_sttn_(net)
        assert torch.allclose(net(x), y, atol=1e-5)
    assert net[3].config.method == "twn" and not hasattr(net[3], "weight2")


def test_layer_selection_forms():
    net = small_net()                       # weight layers "0" (conv), "3" (conv), "7" (linear)
    assert select_layers(net, "all") == ["0", "3", "7"]
    assert select_layers(net, "all_but_first_last") == ["3"]
    assert select_layers(net, ["7", "0"]) == ["0", "7"]          # names (a Sequential's names are numbers)
    assert select_layers(net, "0,7") == ["0", "7"]
    assert select_layers(net, 1) == ["3"]                         # a position that is no module's name
    assert select_layers(net, "1-2") == ["3", "7"]                # positions in a range
    assert select_layers(net, "last") == ["7"] and select_layers(net, "first") == ["0"]
    assert select_layers(net, 0.34) == ["3"]         # a third, in the seeds' order: first and output layers last
    assert select_layers(net, "all", lambda m, fqn: isinstance(m, nn.Linear)) == ["7"]
    with pytest.raises(ValueError, match=r"layers: layer 8 does not exist \(the model has 3 layers\)"):
        select_layers(net, ["8"])
    with pytest.raises(ValueError, match="layers: no Conv2d/Linear layer named 'some'; known: 0, 3, 7"):
        select_layers(net, "some")
    with pytest.raises(ValueError, match="unknown ternarization method"):
        tritnet.ternarize_(net, method="bogus")


def test_ternarize_takes_a_torchao_style_filter_and_a_config():
    net = tritnet.ternarize_(small_net(), TWNConfig(per_channel=True), lambda m, fqn: isinstance(m, nn.Conv2d))
    assert [r.method for r in tritnet.ternary_report(net)] == ["twn", "twn", "float"]
    assert net[0].config.per_channel and net[3].config.per_channel
    with pytest.raises(TypeError, match="filter_fn"):
        tritnet.ternarize_(small_net(), layers=lambda m, fqn: True)


def test_the_old_name_still_works_and_says_it_is_deprecated():
    with pytest.warns(DeprecationWarning, match="use tritnet.ternarize_"):
        net = tritnet.ternarize(small_net(), "ttn", lambda name, m: name == "3", t_ex=2)
    assert [r.method for r in tritnet.ternary_report(net)] == ["float", "ttn", "float"]


def test_report_rows_and_reconfiguration():
    net = tritnet.ternarize_(small_net(), method="twn", layers="all_but_first_last")
    rows = tritnet.ternary_report(net)
    assert [(r.name, r.ternary, r.method) for r in rows] == [("0", False, "float"), ("3", True, "twn"),
                                                             ("7", False, "float")]
    codes, alpha = net[3].ternary_codes()
    assert rows[1].sparsity == pytest.approx(float((codes == 0).float().mean()))
    assert rows[1].scale == pytest.approx(float(alpha))
    shadow = net[3].weight.detach().clone()
    tritnet.ternarize_(net, method="ttn", layers=["3"], t_ex=2)  # re-configure, keeping the float shadow
    assert isinstance(net[3].config, TTNConfig) and torch.equal(net[3].weight, shadow)
    assert len(net[3].ternary_terms()) == 2
    with pytest.raises(ValueError, match="ternary_terms"):
        net[3].ternary_codes()
    assert "1 of 3 layers ternary" in tritnet.format_report(tritnet.ternary_report(net))


def test_state_dict_keys_unchanged_for_twn():
    net = small_net()
    keys = list(net.state_dict())
    tritnet.ternarize_(net, method="twn")
    assert list(net.state_dict()) == keys
