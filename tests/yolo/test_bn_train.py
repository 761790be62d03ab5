"""darknet's CPU batch norm in training mode as one autograd function: the same values and the exact
gradient of the plain formula (x − μ)/(sqrt(var_{n−1}) + ε)·γ + β."""
import pytest
import torch

from tritnet.darknet.layers.bn_train import darknet_bn_train


def plain(x, w, b, eps):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - x.mean(dims).view(shape)) / (x.var(dims, unbiased=True).sqrt().view(shape) + eps) * w.view(shape)
    return y if b is None else y + b.view(shape)


@pytest.mark.parametrize("shape", [(3, 4, 5, 6), (7, 4)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_values_and_gradients_match_the_plain_formula(shape, with_bias):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True) if with_bias else None
    inputs = (x, w) + ((b,) if with_bias else ())
    g = torch.randn(*shape, dtype=torch.float64)
    y, mean, var = darknet_bn_train(x, w, b, 1e-6)
    torch.testing.assert_close(y, plain(x, w, b, 1e-6))
    torch.testing.assert_close(var, x.var([0] + list(range(2, x.dim())), unbiased=True))
    got = torch.autograd.grad((y * g).sum(), inputs)
    want = torch.autograd.grad((plain(x, w, b, 1e-6) * g).sum(), inputs)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)
    assert torch.autograd.gradcheck(lambda *t: darknet_bn_train(t[0], t[1], t[2] if with_bias else None, 1e-3)[0],
                                     inputs)


@pytest.mark.parametrize("eps_on_std,std", [(True, 1e-6), (False, 1e-3)], ids=["pjreddie", "alexeyab"])
def test_a_constant_channel_has_no_nan_gradient(eps_on_std, std):
    """A channel with variance 0: y is the bias, and with x̂ = 0 the batch-norm gradient reduces to
    w·(g − mean g)/σ, σ = √0 + ε (pjreddie's ε on the standard deviation) or √(0 + ε) (AlexeyAB's)."""
    x = torch.ones(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w, b = torch.tensor([1.5], dtype=torch.float64), torch.tensor([0.25], dtype=torch.float64)
    y, _, _ = darknet_bn_train(x, w, b, 1e-6, eps_on_std)
    (y * g).sum().backward()
    assert torch.equal(y, torch.full_like(y, 0.25))
    torch.testing.assert_close(x.grad, 1.5 * (g - g.mean()) / std)
