/* ARM NEON kernels (AArch64 baseline, no dot-product extension needed). Compiled only on ARM; with
 * -DTN_SIMDE the same source compiles against SIMDe's emulation so it can be tested on x86.
 * int8 path: activations as s8 = u - 128, vmlal_s8 into int16 (|a·w| <= 128, so 63 steps of 4 fit),
 * then acc = Σ s8·w + 128·wsum. */
#if defined(__aarch64__) || defined(TN_SIMDE)
#ifdef TN_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#else
#include <arm_neon.h>
#endif
#include <string.h>
#include "tn_epilogue.h"

#define T8_MR 4
static inline __attribute__((always_inline)) void t8_tile(const tn_gemm_args *g, const int8_t *wb, int m, int mr, int nb) {
    int16x8_t a16[T8_MR][2];
    int32x4_t a32[T8_MR][4];
    for (int p = 0; p < mr; p++) {
        a16[p][0] = a16[p][1] = vdupq_n_s16(0);
        for (int q = 0; q < 4; q++) a32[p][q] = vdupq_n_s32(0);
    }
    const int8_t *wk = wb;
    int steps = 0;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[T8_MR];
        for (int p = 0; p < mr; p++) ap[p] = g->a + g->pix[m + p] + g->seg[s];
        for (int j = 0; j < g->L; j += 4, wk += 64) {
            int8x16x4_t w = vld4q_s8(wk);            /* w.val[t] = the 16 channels' weight for k = j + t */
            for (int p = 0; p < mr; p++)
                for (int t = 0; t < 4; t++) {
                    int8x16_t a = vdupq_n_s8((int8_t)(ap[p][j + t] ^ 0x80));
                    a16[p][0] = vmlal_s8(a16[p][0], vget_low_s8(a), vget_low_s8(w.val[t]));
                    a16[p][1] = vmlal_high_s8(a16[p][1], a, w.val[t]);
                }
            if (++steps == 63) {
                steps = 0;
                for (int p = 0; p < mr; p++) {
                    for (int h = 0; h < 2; h++) {
                        a32[p][2 * h] = vaddw_s16(a32[p][2 * h], vget_low_s16(a16[p][h]));
                        a32[p][2 * h + 1] = vaddw_high_s16(a32[p][2 * h + 1], a16[p][h]);
                        a16[p][h] = vdupq_n_s16(0);
                    }
                }
            }
        }
    }
    int32_t acc[T8_MR * 16];
    for (int p = 0; p < mr; p++)
        for (int h = 0; h < 2; h++) {
            vst1q_s32(acc + p * 16 + 8 * h, vaddw_s16(a32[p][2 * h], vget_low_s16(a16[p][h])));
            vst1q_s32(acc + p * 16 + 8 * h + 4, vaddw_high_s16(a32[p][2 * h + 1], a16[p][h]));
        }
    for (int p = 0; p < mr; p++)
        for (int i = 0; i < 16; i++) {
            int n = nb * 16 + i;
            acc[p * 16 + i] += 128 * (n < g->N ? g->wsum[n] : 0);
        }
    tn_epilogue(g, acc, 16, m, mr, nb * 16, 16);
}

void tn_gemm_t8_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + T8_MR <= m1; m += T8_MR) t8_tile(g, wb, m, T8_MR, nb);
        for (; m < m1; m++) t8_tile(g, wb, m, 1, nb);
    }
}

/* popcount path: vcntq_u8 per byte, pairwise-accumulated into 16-bit lanes (vpadalq_u8) */
void tn_gemm_tt_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    int KW = g->KW;
    for (int nb = nb0; nb < nb1; nb++) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * KW * 16;
        for (int m = m0; m < m1; m++) {
            const uint64_t *anz = (const uint64_t *)g->a + (size_t)m * 2 * KW, *asg = anz + KW;
            uint16x8_t pos[4], neg[4];
            for (int q = 0; q < 4; q++) pos[q] = neg[q] = vdupq_n_u16(0);
            for (int k = 0; k < KW; k++) {
                uint64x2_t a = vdupq_n_u64(anz[k]), s = vdupq_n_u64(asg[k]);
                for (int q = 0; q < 4; q++) {
                    uint64x2_t both = vandq_u64(a, vld1q_u64(wb + (size_t)k * 16 + 2 * q));
                    uint64x2_t ng = vandq_u64(both, veorq_u64(s, vld1q_u64(wb + (size_t)k * 16 + 8 + 2 * q)));
                    pos[q] = vpadalq_u8(pos[q], vcntq_u8(vreinterpretq_u8_u64(both)));
                    neg[q] = vpadalq_u8(neg[q], vcntq_u8(vreinterpretq_u8_u64(ng)));
                }
            }
            int32_t acc[8];
            for (int q = 0; q < 4; q++) {
                uint64x2_t P = vpaddlq_u32(vpaddlq_u16(pos[q])), N = vpaddlq_u32(vpaddlq_u16(neg[q]));
                acc[2 * q] = (int32_t)vgetq_lane_u64(P, 0) - 2 * (int32_t)vgetq_lane_u64(N, 0);
                acc[2 * q + 1] = (int32_t)vgetq_lane_u64(P, 1) - 2 * (int32_t)vgetq_lane_u64(N, 1);
            }
            tn_epilogue(g, acc, 8, m, 1, nb * 8, 8);
        }
    }
}
#endif
