"""Ternarizers: pure functions of a weight tensor, each with its straight-through gradient rule.

Every function here takes a float ("shadow") weight and returns the weight the layer computes with.
Nothing here knows about modules, files or training: see ``tritnet.nn`` for the layers.

Statistics (mean, max, scale) are computed in float32 whatever the weight's dtype, so fp16/bf16 weights
give the same thresholds as fp32 and never overflow. Empty selections (an all-zero layer) give a scale of 0
instead of darknet's 0/0 = NaN.

Formulas follow ../shared/docs/methods.md:
  TWN  (§1.1, §4):  Δ = f·mean|W| (strict >),  α = mean|W| over |W| > Δ,   identity STE.
  TTN  (§2.1, §2.3): Δ = t·max|W| (≥),          α = mean|W| over |W| ≥ Δ,  STE zeroed where |W| ≥ clip;
                     the Residual Expansion Layer sums t_ex such ternary tensors (thresholds 0.05, 0.1, …).
  STTN (§3):        two binary filters with a shared per-channel scale m; T = B1 + B2 ∈ {−2m, 0, 2m};
                    straight-through sign inside |W| ≤ clip plus the shared scale's gradient term, for both
                    members (see _BinaryPair).
"""
from __future__ import annotations

import torch

# Thresholds of TTN's Residual Expansion Layer, indexed by expansion (methods.md §2.3).
REL_THRESHOLDS = {1: (0.05,), 2: (0.05, 0.1), 4: (0.05, 0.1, 0.15, 0.2)}


def _reduce_dims(w: torch.Tensor, per_channel: bool) -> tuple[int, ...] | None:
    """Dims that one scale spans: the whole tensor, or all but the output-channel dim 0."""
    if per_channel and w.dim() > 1:
        return tuple(range(1, w.dim()))
    return None


def _mean(x: torch.Tensor, dims) -> torch.Tensor:
    return x.mean() if dims is None else x.mean(dim=dims, keepdim=True)


def _sum(x: torch.Tensor, dims) -> torch.Tensor:
    return x.sum() if dims is None else x.sum(dim=dims, keepdim=True)


def _masked_mean(absw: torch.Tensor, mask: torch.Tensor, dims) -> torch.Tensor:
    kept = mask.to(absw.dtype)
    return _sum(absw * kept, dims) / _sum(kept, dims).clamp_min(1.0)


# --------------------------------------------------------------------------- thresholds and scales

def twn_params(w: torch.Tensor, factor: float = 0.7, per_channel: bool = False):
    """TWN threshold and scale: Δ = factor·mean|W|, α = mean|W| over |W| > Δ (strict).

    Returns (codes, alpha): int8 codes in {-1, 0, 1} shaped like w, and float32 alpha (a scalar, or
    shaped (C, 1, 1, …) when per_channel).
    """
    with torch.no_grad():
        absw = w.detach().float().abs()
        dims = _reduce_dims(w, per_channel)
        delta = factor * _mean(absw, dims)
        mask = absw > delta
        alpha = _masked_mean(absw, mask, dims)
        codes = (torch.sign(w.detach().float()) * mask).to(torch.int8)
    return codes, alpha


def ttn_params(w: torch.Tensor, factor: float = 0.05, per_channel: bool = False):
    """TTN threshold and scale: Δ = factor·max|W|, α = mean|W| over |W| ≥ Δ. Same returns as twn_params."""
    with torch.no_grad():
        absw = w.detach().float().abs()
        dims = _reduce_dims(w, per_channel)
        wmax = absw.amax() if dims is None else absw.amax(dim=dims, keepdim=True)
        delta = factor * wmax
        # An all-zero tensor has Δ = 0 and every |W| ≥ 0: keep nothing rather than everything.
        mask = (absw >= delta) & (absw > 0)
        alpha = _masked_mean(absw, mask, dims)
        codes = (torch.sign(w.detach().float()) * mask).to(torch.int8)
    return codes, alpha


def sttn_scale(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Shared per-output-channel scale of a binary pair: m_k = (‖W1_k‖₁ + ‖W2_k‖₁) / (2n)."""
    with torch.no_grad():
        dims = tuple(range(1, w1.dim())) if w1.dim() > 1 else None
        n = w1[0].numel() if w1.dim() > 1 else w1.numel()
        m = (_sum(w1.detach().float().abs(), dims) + _sum(w2.detach().float().abs(), dims)) / (2 * n)
    return m


def binary_sign(w: torch.Tensor) -> torch.Tensor:
    """±1 with 0 → +1: a binary filter has no zero (torch.sign(0) = 0 would give the pair a fourth level)."""
    return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)


def sttn_params(w1: torch.Tensor, w2: torch.Tensor):
    """The ternary filter a binary pair stands for: codes = (sign W1 + sign W2)/2, scale 2m (per channel)."""
    with torch.no_grad():
        m = sttn_scale(w1, w2)
        s = binary_sign(w1.detach().float()) + binary_sign(w2.detach().float())
        codes = (s / 2).to(torch.int8)              # s is in {-2, 0, 2}
    return codes, 2 * m


# --------------------------------------------------------------------------- ternarizers with gradients

def twn_ternarize(w: torch.Tensor, factor: float = 0.7, per_channel: bool = False) -> torch.Tensor:
    """α·T for TWN; the gradient flows to w unchanged (identity STE, no clipping, as darknetTWN)."""
    codes, alpha = twn_params(w, factor, per_channel)
    t = (codes.float() * alpha).to(w.dtype)
    return w + (t - w).detach()


def ttn_ternarize(w: torch.Tensor, factor: float = 0.05, per_channel: bool = False,
                  t_ex: int = 1, clip: float = 1.0) -> torch.Tensor:
    """Σ_j α_j·T_j over the REL thresholds (t_ex = 1 is plain TTN).

    The gradient is the STE zeroed where |W| ≥ clip. With t_ex > 1 each of the t_ex ternary tensors passes
    that gradient, so ∂L/∂W = t_ex·(clipped ∂L/∂T), as in the reference code where the layer sums t_ex
    convolutions of the same float W.
    """
    if t_ex not in REL_THRESHOLDS:
        raise ValueError(f"TTN t_ex must be one of {sorted(REL_THRESHOLDS)}, got {t_ex}")
    factors = REL_THRESHOLDS[t_ex] if t_ex > 1 else (factor,)
    total = None
    for f in factors:
        codes, alpha = ttn_params(w, f, per_channel)
        t = codes.float() * alpha
        total = t if total is None else total + t
    keep = (w.detach().abs() < clip).to(w.dtype)
    passthrough = (w - w.detach()) * keep * len(factors)
    return total.to(w.dtype).detach() + passthrough


class _BinaryPair(torch.autograd.Function):
    """STTN: B_i = m·sign(W_i) with the shared scale m = (‖W1_k‖₁ + ‖W2_k‖₁)/(2n); returns T = B1 + B2.

    Backward, per output channel, with g = ∂L/∂T (the two convolutions of a pair see the same input, so
    ∂L/∂B1 = ∂L/∂B2 = g) and n the weights of one filter:

        ∂L/∂W1_i = g_i·1[|W1_i| ≤ clip] + sign(W1_i)/(2n) · Σ_j g_j·(sign W1_j + sign W2_j)

    and the same for W2. The first term is the straight-through sign with the hard-tanh window (clip = 1,
    the paper's 1[|W| ≤ 1]); it passes ∂L/∂T as TWN's and the reference code's estimators do. The weights
    are not clamped: the window is what stops a weight that left [−clip, clip] from being pushed further
    (the reference code clamped to [−1, 1] before masking at 1.96, so its mask never fired). The second term
    is the exact gradient through the scale the two filters *share* (∂m/∂W1_i = sign(W1_i)/(2n)), the
    paper's interdependence of the scaling factors; the reference code used each filter's own sign and 1/n
    instead, the gradient of an unshared scale. Short runs chose between the variants (ResNet-20 from the
    pretrained network, all layers STTN, 2 epochs of 5,000 CIFAR-10 images, SGD lr 0.02, top-1 on 2,000 test
    images, one seed): this rule 79.15%; the first term multiplied by m too (the full chain rule) 77.45%
    (77.90% with Adam); the reference code's own-sign term without its clamp 76.85%.
    """

    @staticmethod
    def forward(ctx, w1, w2, clip: float):
        m = sttn_scale(w1, w2).to(w1.dtype)
        s1, s2 = binary_sign(w1), binary_sign(w2)
        ctx.save_for_backward(w1, w2)
        ctx.clip = clip
        return (s1 + s2) * m

    @staticmethod
    def backward(ctx, g):
        w1, w2 = ctx.saved_tensors
        dims = tuple(range(1, g.dim())) if g.dim() > 1 else None
        n = w1[0].numel() if w1.dim() > 1 else w1.numel()
        s1, s2 = binary_sign(w1), binary_sign(w2)
        shared = _sum(g * (s1 + s2), dims) / (2 * n)          # Σ_j g_j·∂T_j/∂m, times ∂m/∂|W_i| = 1/(2n)

        def rule(w, s):
            return g * (w.abs() <= ctx.clip).to(g.dtype) + s * shared

        return rule(w1, s1), rule(w2, s2), None


def sttn_ternarize(w1: torch.Tensor, w2: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """The merged ternary weight of a binary pair, B1 + B2, with STTN's gradient rule for both members."""
    return _BinaryPair.apply(w1, w2, clip)


def sttn_binary_weights(w1: torch.Tensor, w2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two binary filters B1 = m·sign(W1), B2 = m·sign(W2) themselves (no gradient)."""
    m = sttn_scale(w1, w2)
    return (binary_sign(w1.detach()) * m).to(w1.dtype), (binary_sign(w2.detach()) * m).to(w2.dtype)


def sttn_split(w: torch.Tensor, factor: float = 0.7, clip: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A binary pair (W1, W2) that stands for the per-channel TWN ternarization of the float weight ``w``:
    the same codes and, per output channel k, the same value (2m_k = α_k), every entry inside [−clip, clip].

    With d = factor·mean|w_k| (TWN's Δ): W1 = s_k·(w + d), W2 = s_k·(w − d). Where |w| > d both share w's
    sign (code ±1); below, they disagree (code 0). Each member's distance from zero is the weight's distance
    from the threshold, so training moves first the weights TWN found nearest to it. s_k solves
    mean_j min(s_k·|u_j|, clip) = α_k/2 over the 2n entries u of (w + d, w − d): the entries that would
    leave the window are put at ±clip and the others scaled up to make up the value (exact, in at most 2n
    rounds; one or two in practice). A channel whose α_k ≥ 2·clip cannot fit in the window and is scaled
    without clipping. Float32 results.
    """
    with torch.no_grad():
        w = w.detach().float()
        codes, alpha = twn_params(w, factor, per_channel=True)
        dims = tuple(range(1, w.dim())) if w.dim() > 1 else None
        d = factor * _mean(w.abs(), dims)                     # the threshold twn_params used
        u1, u2 = w + d, w - d
        c = w.shape[0] if w.dim() > 1 else 1
        v = torch.cat([u1.abs().reshape(c, -1), u2.abs().reshape(c, -1)], 1)       # (C, 2n)
        target = (alpha.reshape(c, 1) / 2) * v.shape[1]       # Σ_j min(s·v_j, clip) must reach this
        fits = target < clip * (v > 0).sum(1, keepdim=True)   # else even all entries at ±clip fall short
        s = target / v.sum(1, keepdim=True).clamp_min(1e-30)  # no clipping; exact where nothing passes clip
        clipped = torch.zeros_like(v, dtype=torch.bool)
        for _ in range(v.shape[1]):      # water-filling: s only grows, so the clipped set only grows
            now = (s * v > clip) & fits
            if torch.equal(now, clipped):
                break
            clipped = now
            rest = (v * ~now).sum(1, keepdim=True).clamp_min(1e-30)
            s = torch.where(fits, (target - clip * now.sum(1, keepdim=True)) / rest, s)
        shape = (c,) + (1,) * (w.dim() - 1) if w.dim() > 1 else ()
        s = s.reshape(shape)
        limit = torch.where(fits.reshape(shape), torch.full_like(s, clip), torch.full_like(s, float("inf")))
        w1 = torch.maximum(torch.minimum(s * u1, limit), -limit)
        w2 = torch.maximum(torch.minimum(s * u2, limit), -limit)
        # |w| = d exactly (or an all-zero channel) gives W2 = 0, whose binary sign is +1: keep the code 0
        w2 = torch.where((codes == 0) & (w2 >= 0), torch.full_like(w2, -1e-4 * clip), w2)
    return w1, w2


# --------------------------------------------------------------------------- ternary activation

class _TernaryActivation(torch.autograd.Function):
    """−1 below −0.5, +1 at or above 0.5, 0 between; gradient passed where −1 ≤ x ≤ 1 (STTN's CUDA kernel)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0.5).to(x.dtype) - (x < -0.5).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


def ternary_activation(x: torch.Tensor) -> torch.Tensor:
    return _TernaryActivation.apply(x)
