/* ARMv8.2 dot-product kernel for the int8 GEMM (SDOT: Cortex-A55, A76 (Raspberry Pi 5), Neoverse N1 and
 * later), chosen by cpu.c from HWCAP_ASIMDDP; the other steps are kernels_neon.c's. Only this file is compiled
 * for ARMv8.2 + dotprod, so the build still runs on a Cortex-A72. With -DTN_SIMDE it compiles against SIMDe
 * on x86, for the emulated tests.
 *
 * The weight block of 4 k x 16 channels is 4 q registers of 4 channels x 4 bytes, which is SDOT's operand
 * shape: sdot c.4s, w.16b, a.4b[lane] adds the 4-byte dot products of 4 channels with one k4 group of a
 * pixel, 16 multiply-adds in one instruction, int32 lanes (no widening). 16 activation bytes (4 k4 groups)
 * come in with one load. SDOT is signed x signed: activations enter as s8 = u - 128 (one eor per 16 bytes)
 * and the epilogue runs with zp - 128, since acc - (zp - 128)·wsum = Σ u·w - zp·wsum exactly. */
#include "tn.h"
#if defined(TN_HAVE_DOTPROD) || defined(TN_SIMDE)
#if !defined(TN_SIMDE) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#ifdef TN_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#else
#include <arm_neon.h>
#endif
#include <string.h>
#include "tn_epilogue.h"
#include "epi_neon.h"

/* 4 pixels x 16 channels: 16 accumulators, 4 activation and 4 weight registers of the 32 */
#define DOT_MR 4

/* the 4 channel groups of one k4 block W against group LANE of each pixel's activations */
#define DOT_K4(W, LANE) { \
    int8x16_t w0_ = vld1q_s8(W), w1_ = vld1q_s8((W) + 16), w2_ = vld1q_s8((W) + 32), w3_ = vld1q_s8((W) + 48); \
    for (int p = 0; p < mr; p++) { \
        c[p][0] = vdotq_laneq_s32(c[p][0], w0_, av[p], LANE); c[p][1] = vdotq_laneq_s32(c[p][1], w1_, av[p], LANE); \
        c[p][2] = vdotq_laneq_s32(c[p][2], w2_, av[p], LANE); c[p][3] = vdotq_laneq_s32(c[p][3], w3_, av[p], LANE); } }

static inline __attribute__((always_inline)) void dot_tile(const tn_gemm_args *g, const int8_t *wb, int m, int mr, int nb) {
    int32x4_t c[DOT_MR][4];
    for (int p = 0; p < mr; p++)
        for (int q = 0; q < 4; q++) c[p][q] = vdupq_n_s32(0);
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const int8_t *wk = wb;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[DOT_MR];
        int8x16_t av[DOT_MR];
        for (int p = 0; p < mr; p++) ap[p] = g->a + g->pix[m + p] + g->seg[s];
        int j = 0;
        for (; j + 16 <= g->L; j += 16, wk += 256) {
            for (int p = 0; p < mr; p++) av[p] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ap[p] + j), flip));
            DOT_K4(wk, 0) DOT_K4(wk + 64, 1) DOT_K4(wk + 128, 2) DOT_K4(wk + 192, 3)
        }
        for (; j < g->L; j += 4, wk += 64) {         /* the segment's last L % 16 bytes, one k4 group at a time */
            for (int p = 0; p < mr; p++) {
                uint32_t u;
                memcpy(&u, ap[p] + j, 4);
                av[p] = vreinterpretq_s8_u32(vdupq_n_u32(u ^ 0x80808080u));
            }
            DOT_K4(wk, 0)
        }
    }
    int32_t acc[DOT_MR * 16];
    for (int p = 0; p < mr; p++)
        for (int q = 0; q < 4; q++) vst1q_s32(acc + p * 16 + 4 * q, c[p][q]);
    epi_neon(g, acc, 16, m, mr, nb * 16, 16);
}

void tn_gemm_t8_dotprod(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    tn_gemm_args gs = *g;
    gs.zp = g->zp - 128;                              /* the sums are over u - 128 */
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + DOT_MR <= m1; m += DOT_MR) dot_tile(&gs, wb, m, DOT_MR, nb);
        switch (m1 - m) {                             /* the pixel tail, with its own unrolled tile */
        case 3: dot_tile(&gs, wb, m, 3, nb); break;
        case 2: dot_tile(&gs, wb, m, 2, nb); break;
        case 1: dot_tile(&gs, wb, m, 1, nb); break;
        default: break;
        }
    }
}
#endif
