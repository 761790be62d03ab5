/* The NEON epilogue, 4 channels at a time, shared by the AArch64 NEON, dot-product and I8MM files (a static
 * function, so it compiles under each file's target). Same IEEE operations in the same order as tn_epilogue
 * (the build has -ffp-contract=off, so vmulq + vaddq never fuse). Not used on 32-bit ARM, whose NEON float
 * arithmetic flushes denormals to zero: there the scalar VFP epilogue keeps the results bit-identical. */
#ifndef TN_EPI_NEON_H
#define TN_EPI_NEON_H
#include "tn_epilogue.h"

static void epi_neon(const tn_gemm_args *g, const int32_t *acc, int lda, int m, int rows, int n0, int width) {
    int n = n0, n1 = n0 + width < g->N ? n0 + width : g->N;
    for (; n + 4 <= n1; n += 4) {
        int in_res = g->res && n >= g->res_off && n + 4 <= g->res_off + g->res_c;
        int mixed = g->res && !in_res && n < g->res_off + g->res_c && n + 4 > g->res_off;
        if (mixed || g->act >= TN_ACT_LOGISTIC) {
            for (int r = 0; r < rows; r++) tn_epilogue(g, acc + r * lda + (n - n0), lda, m + r, 1, n, 4);
            continue;
        }
        int32x4_t zpw = vmulq_s32(vdupq_n_s32(g->zp), vld1q_s32(g->wsum + n));
        float32x4_t sc = vld1q_f32(g->scale + n), bi = vld1q_f32(g->bias + n), zero = vdupq_n_f32(0.f);
        float32x4_t slope = g->act == TN_ACT_PRELU ? vld1q_f32(g->prelu + n) : vdupq_n_f32(0.1f);
        for (int r = 0; r < rows; r++) {
            int32x4_t a = vsubq_s32(vld1q_s32(acc + r * lda + n - n0), zpw);
            float32x4_t v = vaddq_f32(vmulq_f32(vcvtq_f32_s32(a), sc), bi);
            if (in_res) v = vaddq_f32(v, vld1q_f32(g->res + g->res_pix[m + r] + n - g->res_off));
            /* v > 0 ? v : x, as a select: NaN and -0 take x, as in tn_act (vmaxq would keep NaN) */
            if (g->act == TN_ACT_RELU) v = vbslq_f32(vcgtq_f32(v, zero), v, zero);
            else if (g->act == TN_ACT_LEAKY || g->act == TN_ACT_PRELU)
                v = vbslq_f32(vcgtq_f32(v, zero), v, vmulq_f32(slope, v));
            vst1q_f32(tn_out_row(g, m + r) + n, v);
        }
    }
    if (n < n1)
        for (int r = 0; r < rows; r++) tn_epilogue(g, acc + r * lda + (n - n0), lda, m + r, 1, n, n1 - n);
}
#endif
