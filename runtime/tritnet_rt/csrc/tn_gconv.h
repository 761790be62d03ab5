/* The grouped / depthwise conv's row (tn.h), one frame for every kernel: per output pixel, the taps in ky, kx
 * order (taps outside the input skipped: zero padding), then scale, bias and activation. A kernel gives the two
 * steps: ``tap`` adds one tap's products into the pixel's N sums, ``finish`` turns the sums into outputs. The
 * SIMD versions do the same float operations in the same order as the serial one (mul, then add; the build has
 * -ffp-contract=off), so every path gives the same bits. Static inline: each file's steps inline into it. */
#ifndef TN_GCONV_H
#define TN_GCONV_H
#include "tn_epilogue.h"

typedef void (*tn_gconv_tap_fn)(const tn_gconv_args *g, float *o, const float *w, const float *x);
typedef void (*tn_gconv_finish_fn)(const tn_gconv_args *g, float *o);

static inline void tn_gconv_frame(const tn_gconv_args *g, int b, int oy, tn_gconv_tap_fn tap, tn_gconv_finish_fn finish) {
    int N = g->N;
    float *o = g->out + ((size_t)b * g->Ho + oy) * g->Wo * N;
    for (int ox = 0; ox < g->Wo; ox++, o += N) {
        for (int n = 0; n < N; n++) o[n] = 0.f;
        for (int ky = 0; ky < g->kh; ky++) {
            int iy = oy * g->stride - g->pt + ky;
            if (iy < 0 || iy >= g->H) continue;
            for (int kx = 0; kx < g->kw; kx++) {
                int ix = ox * g->stride - g->pl + kx;
                if (ix < 0 || ix >= g->W) continue;
                tap(g, o, g->w + (size_t)(ky * g->kw + kx) * g->Cg * N,
                    g->x + (((size_t)b * g->H + iy) * g->W + ix) * g->C);
            }
        }
        finish(g, o);
    }
}

/* the activation pass's scalar part, channels [n, N): what a SIMD finish leaves (tails, other activations) */
static inline void tn_gconv_finish_from(const tn_gconv_args *g, float *o, int n) {
    for (; n < g->N; n++) o[n] = tn_act(g->act, o[n] * g->scale[n] + g->bias[n], NULL, n);
}

/* SIMD versions vectorize the depthwise case (one input and one output channel a group) and leave the rest to
 * the serial kernel */
static inline int tn_gconv_is_depthwise(const tn_gconv_args *g) { return g->Cg == 1 && g->Ng == 1; }
#endif
