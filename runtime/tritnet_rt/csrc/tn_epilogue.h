/* The epilogue every GEMM kernel ends with, included by each ISA file (static inline, so it compiles with
 * that file's target flags). The build uses -ffp-contract=off, so every ISA gives bit-identical floats. */
#ifndef TN_EPILOGUE_H
#define TN_EPILOGUE_H
#include <math.h>
#include "tn.h"

/* where pixel m's outputs go */
static inline float *tn_out_row(const tn_gemm_args *g, int m) { return g->out + (size_t)(m - g->m_base) * g->ldo; }

static inline float tn_act(int act, float v, const float *prelu, int n) {
    switch (act) {
    case TN_ACT_RELU: return v > 0.f ? v : 0.f;
    case TN_ACT_LEAKY: return v > 0.f ? v : 0.1f * v;
    case TN_ACT_PRELU: return v > 0.f ? v : prelu[n] * v;
    case TN_ACT_LOGISTIC: return 1.f / (1.f + expf(-v));
    case TN_ACT_SWISH: return v * (1.f / (1.f + expf(-v)));         /* darknet: x·logistic(x) */
    case TN_ACT_MISH: {                                              /* AlexeyAB: x·tanh(softplus(x)), threshold 20 */
        float sp = v > 20.f ? v : v < -20.f ? expf(v) : log1pf(expf(v));
        return v * tanhf(sp);
    }
    default: return v;
    }
}

/* acc: rows x 16·cols int32 tile (row stride lda) for pixels m.., channels n0.. */
static inline void tn_epilogue(const tn_gemm_args *g, const int32_t *acc, int lda, int m, int rows, int n0, int width) {
    int n1 = n0 + width < g->N ? n0 + width : g->N;
    for (int r = 0; r < rows; r++) {
        float *o = tn_out_row(g, m + r);
        const float *res = g->res ? g->res + g->res_pix[m + r] : NULL;
        for (int n = n0; n < n1; n++) {
            float v = (float)(acc[r * lda + n - n0] - g->zp * g->wsum[n]) * g->scale[n] + g->bias[n];
            if (res && n >= g->res_off && n < g->res_off + g->res_c) v += res[n - g->res_off];
            o[n] = tn_act(g->act, v, g->prelu, n);
        }
    }
}
#endif
