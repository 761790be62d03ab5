"""Ternarizers against the hand-computed vectors of methods.md §6, and their gradient rules via autograd."""
import pytest
import torch

from tritnet.quant import (make_config, sttn_binary_weights, sttn_params, sttn_scale, sttn_split, sttn_ternarize,
                           ternary_activation, ttn_params, ttn_ternarize, twn_params, twn_ternarize)
from tritnet.quant.functional import binary_sign

W = torch.tensor([0.9, -0.05, 0.3, -0.6, 0.02, 0.1])


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_twn_vector():
    # mean|W| = 1.97/6, Δ = 0.22983; kept {0.9, 0.3, 0.6}; α = 0.6
    assert close(twn_ternarize(W), [0.6, 0, 0.6, -0.6, 0, 0])
    codes, alpha = twn_params(W)
    assert codes.tolist() == [1, 0, 1, -1, 0, 0] and codes.dtype == torch.int8
    assert close(alpha, 0.6)


def test_twn_threshold_is_strict_and_a_parameter():
    w = torch.tensor([2.0, -1.0, 0.5, -0.5])  # mean|w| = 1.0, so Δ = factor exactly
    assert twn_params(w, factor=0.5)[0].tolist() == [1, -1, 0, 0]  # |w| = Δ = 0.5 is dropped (strict >)
    assert close(twn_params(w, factor=0.5)[1], 1.5)
    assert twn_params(w, factor=0.25)[0].tolist() == [1, -1, 1, -1]
    assert close(twn_params(w, factor=0.25)[1], 1.0)


def test_twn_per_channel():
    w = torch.tensor([[0.9, -0.05, 0.3], [-0.6, 0.02, 0.1]])
    codes, alpha = twn_params(w, per_channel=True)
    # row 0: mean 0.41667, Δ .29167 → {0.9, 0.3}, α .6 ; row 1: mean .24, Δ .168 → {0.6}, α .6
    assert codes.tolist() == [[1, 0, 1], [-1, 0, 0]]
    assert alpha.shape == (2, 1) and close(alpha.flatten(), [0.6, 0.6])


def test_twn_idempotent():
    t = twn_ternarize(W)
    assert close(twn_ternarize(t), t)


def test_ttn_vector_and_rel():
    assert close(ttn_ternarize(W), [0.39, -0.39, 0.39, -0.39, 0, 0.39])
    assert close(ttn_params(W)[1], 0.39)
    assert close(ttn_ternarize(W, t_ex=2), [0.865, -0.39, 0.865, -0.865, 0, 0.865])
    four = ttn_ternarize(W, t_ex=4)  # thresholds .045, .09, .135, .18 of max 0.9
    # α3 over {.9,.3,.6} = .6, α4 over {.9,.3,.6} = .6
    assert close(four, [0.39 + 0.475 + 0.6 + 0.6, -0.39, 0.39 + 0.475 + 0.6 + 0.6,
                        -(0.39 + 0.475 + 0.6 + 0.6), 0, 0.39 + 0.475])


def test_sttn_vector():
    w1 = torch.tensor([[0.5, -0.2, 0.1]])
    w2 = torch.tensor([[0.3, 0.4, -0.6]])
    b1, b2 = sttn_binary_weights(w1, w2)
    assert close(b1, [[0.35, -0.35, 0.35]]) and close(b2, [[0.35, 0.35, -0.35]])
    assert close(sttn_ternarize(w1, w2), [[0.7, 0, 0]])
    codes, scale = sttn_params(w1, w2)
    assert codes.tolist() == [[1, 0, 0]] and close(scale.flatten(), [0.7])


def test_twn_gradient_is_identity():
    w = W.clone().requires_grad_()
    g = torch.tensor([1.0, 2, 3, 4, 5, 6])
    (twn_ternarize(w) * g).sum().backward()
    assert close(w.grad, g)


def test_ttn_gradient_clipped_at_one():
    w = torch.tensor([1.5, -1.0, 0.3, -0.99, 0.0, 0.2], requires_grad=True)
    g = torch.tensor([1.0, 2, 3, 4, 5, 6])
    (ttn_ternarize(w) * g).sum().backward()
    assert close(w.grad, [0, 0, 3, 4, 5, 6])
    w.grad = None
    (ttn_ternarize(w, t_ex=2) * g).sum().backward()  # t_ex ternary tensors each pass the STE gradient
    assert close(w.grad, [0, 0, 6, 8, 10, 12])


def test_sttn_gradient_rule():
    w1 = torch.tensor([[0.5, -0.2, 0.1]], requires_grad=True)
    w2 = torch.tensor([[0.3, 0.4, -0.6]], requires_grad=True)
    g = torch.tensor([[1.0, -2.0, 4.0]])
    (sttn_ternarize(w1, w2) * g).sum().backward()
    # sign W1 + sign W2 = [2, 0, 0]: the shared term is Σ g·(s1 + s2)/(2n) = 2/6 for both members;
    # ∂L/∂W_i = g_i·1[|W_i| ≤ 1] + sign(W_i)/3
    assert close(w1.grad, [[1 + 1 / 3, -2 - 1 / 3, 4 + 1 / 3]], 1e-6)
    assert close(w2.grad, [[1 + 1 / 3, -2 + 1 / 3, 4 - 1 / 3]], 1e-6)


def test_sttn_window_masks_the_sign_term_and_nothing_is_clamped():
    w1 = torch.tensor([[1.5, -0.2, 0.1]], requires_grad=True)
    w2 = torch.tensor([[0.3, 0.4, -0.6]], requires_grad=True)
    g = torch.tensor([[1.0, -2.0, 4.0]])
    t = sttn_ternarize(w1, w2)
    m = (1.8 + 1.3) / 6                                     # |1.5| counts in full: no clamp to [-1, 1]
    assert close(t, [[2 * m, 0, 0]])
    (t * g).sum().backward()
    assert close(w1.grad, [[0 + 1 / 3, -2 - 1 / 3, 4 + 1 / 3]], 1e-6)            # |1.5| > 1: sign term masked
    w1.grad = w2.grad = None
    (sttn_ternarize(w1, w2, clip=2.0) * g).sum().backward()                      # a wider window lets it through
    assert close(w1.grad, [[1 + 1 / 3, -2 - 1 / 3, 4 + 1 / 3]], 1e-6)


def test_sttn_shared_term_is_the_gradient_through_the_shared_scale():
    """The rule's second term is autograd's gradient of m(W1, W2)·(sign W1 + sign W2) with respect to the
    scale's inputs alone (sign held fixed): the dependence of the shared scale on both filters; the first term
    is the windowed straight-through g."""
    torch.manual_seed(0)
    w1 = (torch.rand(4, 3, 3, 3) * 2.4 - 1.2).requires_grad_()
    w2 = (torch.rand(4, 3, 3, 3) * 2.4 - 1.2).requires_grad_()
    g = torch.randn(4, 3, 3, 3)
    (sttn_ternarize(w1, w2) * g).sum().backward()
    a1, a2 = w1.detach().clone().requires_grad_(), w2.detach().clone().requires_grad_()
    m = (a1.abs().sum((1, 2, 3), keepdim=True) + a2.abs().sum((1, 2, 3), keepdim=True)) / (2 * 27)
    ((binary_sign(a1.detach()) + binary_sign(a2.detach())) * m * g).sum().backward()
    for w, a in ((w1, a1), (w2, a2)):
        window = (w.detach().abs() <= 1).float()
        assert torch.allclose(w.grad, g * window + a.grad, atol=1e-5)
    assert (w1.detach().abs() > 1).any()                    # the window is exercised


def test_sttn_split_without_clipping():
    w = torch.tensor([[0.9, -0.05, 0.3], [-0.6, 0.02, 0.1]])
    w1, w2 = sttn_split(w)
    # row 0: Δ = 0.7·0.41667 = 0.291667, codes [1, 0, 1], α = 0.6; u1 = w + Δ, u2 = w − Δ;
    # Σ|u| = 2.983333 and the pair's mean |W| must be α/2 = 0.3, so s = 1.8 / 2.983333; nothing passes 1
    s = 1.8 / 2.983333
    assert close(w1[0], [s * 1.191667, s * 0.241667, s * 0.591667], 1e-5)
    assert close(w2[0], [s * 0.608333, s * -0.341667, s * 0.008333], 1e-5)
    codes, scale = sttn_params(w1, w2)
    assert codes.tolist() == [[1, 0, 1], [-1, 0, 0]] and close(scale.flatten(), [0.6, 0.6])


def test_sttn_split_clips_at_the_window_and_keeps_the_value():
    """A channel with a large weight (the pretrained ResNet-20's first conv has |w| up to 1.87): entries that
    would pass ±1 sit at ±1 and the rest are scaled up, so 2m still equals TWN's α (the old split shrank the
    whole layer instead and came out 34% low there)."""
    w = torch.tensor([[3.0, -0.2, 0.6, 0.2]])
    w1, w2 = sttn_split(w, factor=0.5)
    # mean|w| = 1, Δ = 0.5, codes [1, 0, 1, 0], α = 1.8, so Σ|W| over the 8 entries must be 7.2.
    # u1 = [3.5, .3, 1.1, .7], u2 = [2.5, -.7, .1, -.3]; clipping 3.5, 2.5, 1.1, .7, .7 leaves 2.2 for
    # .3 + .1 + .3 = .7: s = 22/7
    s = 22 / 7
    assert close(w1, [[1, 0.3 * s, 1, 1]], 1e-6) and close(w2, [[1, -1, 0.1 * s, -0.3 * s]], 1e-6)
    codes, scale = sttn_params(w1, w2)
    assert codes.tolist() == [[1, 0, 1, 0]] and close(scale.flatten(), [1.8], 1e-6)
    assert close(sttn_scale(w1, w2).flatten(), [0.9], 1e-6)


def test_sttn_split_edge_cases_keep_the_codes():
    # |w| = Δ exactly (TWN drops it: strict >) and an all-zero channel: W2 must stay negative (code 0)
    w = torch.tensor([[2.0, -1.0, 0.5, -0.5], [0.0, 0.0, 0.0, 0.0]])
    w1, w2 = sttn_split(w, factor=0.5)
    codes, scale = sttn_params(w1, w2)
    assert codes.tolist() == [[1, -1, 0, 0], [0, 0, 0, 0]]
    assert close(scale[0].flatten(), [1.5], 1e-3) and torch.isfinite(w1).all() and torch.isfinite(w2).all()


def test_sttn_split_matches_per_channel_twn_on_the_pretrained_first_conv(shared_data):
    import tritnet
    from tritnet.models import load_pretrained
    model = tritnet.create_model("resnet20")
    load_pretrained(model, shared_data / "pretrained" / "resnet_cifar10", model.model_info)
    w = model.conv1.weight.detach().clone()
    assert w.abs().max() > 1.5                               # the case the old split got 34% wrong
    tritnet.ternarize_(model, method="sttn", layers=["conv1"])
    codes, scale = model.conv1.ternary_codes()
    twn_codes, alpha = twn_params(w, 0.7, per_channel=True)
    assert torch.equal(codes, twn_codes)
    assert torch.allclose(scale.flatten(), alpha.flatten(), rtol=1e-5)
    assert model.conv1.weight.abs().max() <= 1 and model.conv1.weight2.abs().max() <= 1


def test_ternary_activation_forward_and_gradient():
    x = torch.tensor([-2.0, -1.0, -0.51, -0.5, 0.0, 0.49, 0.5, 1.0, 1.01], requires_grad=True)
    y = ternary_activation(x)
    assert y.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("w", [torch.zeros(4, 3, 3, 3), torch.tensor([0.7]), torch.tensor([-3e-8])])
def test_degenerate_inputs_are_finite(w, dtype):
    w = w.to(dtype)
    for out in (twn_ternarize(w), twn_ternarize(w, per_channel=True), ttn_ternarize(w), ttn_ternarize(w, t_ex=4),
                sttn_ternarize(w, -w), sttn_ternarize(w, w)):
        assert out.dtype == dtype and torch.isfinite(out.float()).all()
    if w.abs().sum() == 0:
        assert twn_ternarize(w).abs().sum() == 0 and ttn_ternarize(w).abs().sum() == 0
    else:   # one weight keeps its value in every dtype; TTN's REL sums t_ex terms of the same W (methods.md 2.3)
        for out in (twn_ternarize(w), twn_ternarize(w, per_channel=True), ttn_ternarize(w)):
            assert torch.equal(out, w)
        assert torch.equal(ttn_ternarize(w, t_ex=4), 4 * w)


def test_single_weight_keeps_its_value():
    w = torch.tensor([0.7])
    assert close(twn_ternarize(w), [0.7]) and close(ttn_ternarize(w), [0.7])


def test_half_precision_matches_float32_statistics():
    torch.manual_seed(0)
    w = torch.randn(64, 32, 3, 3) * 0.05
    c32, a32 = twn_params(w)
    c16, a16 = twn_params(w.half())
    assert (c32 != c16).float().mean() < 0.01 and abs(float(a32) - float(a16)) < 1e-3 * float(a32)


def test_unknown_method_and_option_are_clear_errors():
    with pytest.raises(ValueError, match="unknown ternarization method 'twm'"):
        make_config("twm")
    with pytest.raises(ValueError, match="unknown option"):
        make_config("twn", t_ex=2)
    with pytest.raises(ValueError, match="t_ex"):
        make_config("ttn", t_ex=3)
    with pytest.raises(ValueError, match="residual expansion's own thresholds"):
        make_config("ttn", t_ex=2, threshold=0.1)
