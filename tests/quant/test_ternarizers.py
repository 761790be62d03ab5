"""Ternarizers against the hand-computed vectors of methods.md §6, and their gradient rules via autograd."""
import pytest
import torch

from tritnet.quant import (make_config, sttn_binary_weights, sttn_params, sttn_ternarize, ternary_activation,
                           ttn_params, ttn_ternarize, twn_params, twn_ternarize)

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
    # g' = g + sign(W)·mean(sign(W)·g): sign(w1)·g = [1, 2, 4] → mean 7/3; sign(w2)·g = [1, -2, -4] → −5/3
    assert close(w1.grad, [[1 + 7 / 3, -2 - 7 / 3, 4 + 7 / 3]], 1e-5)
    assert close(w2.grad, [[1 - 5 / 3, -2 - 5 / 3, 4 + 5 / 3]], 1e-5)


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
