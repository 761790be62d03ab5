/* I8MM kernel for the int8 GEMM (USMMLA: Cortex-A510/A710/X2, Neoverse V1/N2 and later; ARMv8.6), chosen by
 * cpu.c from HWCAP2_I8MM; the other steps are kernels_neon.c's. Only this file is compiled for
 * ARMv8.2 + i8mm.
 *
 * usmmla c.4s, a.16b, b.16b multiplies a 2 x 8 u8 matrix (two pixels, 8 k) by an 8 x 2 s8 one (two channels):
 * 32 multiply-adds per instruction, twice SDOT's, and unsigned x signed, so the u8 activations go in as they
 * are (no eor, no zero-point correction). A matrix row must be 8 consecutive k of one channel, where the packed
 * block holds 4 k per channel: zip1/zip2 on 32-bit lanes of two consecutive blocks make channel pairs
 * (4 zips per 8 k x 8 channels). Pixel pairs: one 16-byte load per pixel covers two 8-k steps, split by
 * zip1/zip2 on 64-bit lanes. The tile is 8 pixels x 8 channels (16 accumulators), twice per channel block. */
#include "tn.h"
#ifdef TN_HAVE_I8MM
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("arch=armv8.2-a+i8mm")
#endif
#include <arm_neon.h>
#include <string.h>
#include "tn_epilogue.h"
#include "epi_neon.h"

#define MM_NP 4                                        /* pixel pairs per tile */

static inline int8x16_t zip1_32(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s32(vzip1q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}
static inline int8x16_t zip2_32(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s32(vzip2q_s32(vreinterpretq_s32_s8(a), vreinterpretq_s32_s8(b)));
}

/* B matrices for 8 k x this half's 8 channels: blocks k4 (X: 2 q registers of 4 channels x 4 k) and k4 + 1
 * (Y; or zeros), zipped into channel pairs (c, c + 1) x 8 k */
static inline __attribute__((always_inline)) void mm_b(const int8_t *x, const int8_t *y, int8x16_t b[4]) {
    int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16), y0 = vdupq_n_s8(0), y1 = y0;
    if (y) { y0 = vld1q_s8(y); y1 = vld1q_s8(y + 16); }
    b[0] = zip1_32(x0, y0); b[1] = zip2_32(x0, y0); b[2] = zip1_32(x1, y1); b[3] = zip2_32(x1, y1);
}

#define MM_PAIR(I, A, B) { c[I][0] = vusmmlaq_s32(c[I][0], A, (B)[0]); c[I][1] = vusmmlaq_s32(c[I][1], A, (B)[1]); \
                           c[I][2] = vusmmlaq_s32(c[I][2], A, (B)[2]); c[I][3] = vusmmlaq_s32(c[I][3], A, (B)[3]); }

static inline uint64_t load4(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* pixels m .. m + rows - 1 (rows <= 2·np; an odd last pixel is paired with itself) x the 16 channels of nb */
static inline __attribute__((always_inline)) void mm_tile(const tn_gemm_args *g, const int8_t *wb, int m, int np, int rows, int nb) {
    int32_t acc[2 * MM_NP * 16];
    int32_t pm[2 * MM_NP];
    for (int p = 0; p < 2 * np; p++) pm[p] = g->pix[m + (p < rows ? p : rows - 1)];
    for (int h = 0; h < 2; h++) {                      /* channels 8h .. 8h + 7: bytes 32h .. 32h + 31 of a block */
        int32x4_t c[MM_NP][4];
        for (int i = 0; i < np; i++)
            for (int q = 0; q < 4; q++) c[i][q] = vdupq_n_s32(0);
        const int8_t *wk = wb + 32 * h;
        for (int s = 0; s < g->S; s++) {
            const uint8_t *ap[2 * MM_NP];
            for (int p = 0; p < 2 * np; p++) ap[p] = g->a + pm[p] + g->seg[s];
            int j = 0;
            /* weights first, then one pixel pair at a time: 16 accumulators, 8 B and 2 A registers live */
            for (; j + 16 <= g->L; j += 16, wk += 256) {
                int8x16_t b0[4], b1[4];
                mm_b(wk, wk + 64, b0); mm_b(wk + 128, wk + 192, b1);
                for (int i = 0; i < np; i++) {
                    uint64x2_t x = vreinterpretq_u64_u8(vld1q_u8(ap[2 * i] + j));
                    uint64x2_t y = vreinterpretq_u64_u8(vld1q_u8(ap[2 * i + 1] + j));
                    uint8x16_t a0 = vreinterpretq_u8_u64(vzip1q_u64(x, y)), a1 = vreinterpretq_u8_u64(vzip2q_u64(x, y));
                    MM_PAIR(i, a0, b0) MM_PAIR(i, a1, b1)
                }
            }
            for (; j + 8 <= g->L; j += 8, wk += 128) {
                int8x16_t b0[4];
                mm_b(wk, wk + 64, b0);
                for (int i = 0; i < np; i++) {
                    uint8x16_t a0 = vcombine_u8(vld1_u8(ap[2 * i] + j), vld1_u8(ap[2 * i + 1] + j));
                    MM_PAIR(i, a0, b0)
                }
            }
            if (j < g->L) {                            /* L % 8 == 4: the last k4 group, paired with zero weights */
                int8x16_t b0[4];
                mm_b(wk, NULL, b0);
                for (int i = 0; i < np; i++) {
                    uint8x16_t a0 = vreinterpretq_u8_u64(vcombine_u64(vcreate_u64(load4(ap[2 * i] + j)),
                                                                      vcreate_u64(load4(ap[2 * i + 1] + j))));
                    MM_PAIR(i, a0, b0)
                }
                wk += 64;
            }
        }
        /* c[i][q] = [p0·ch0, p0·ch1, p1·ch0, p1·ch1] for pixels 2i, 2i+1 and channels 8h + 2q, +1 */
        for (int i = 0; i < np; i++)
            for (int q = 0; q < 4; q += 2) {
                int64x2_t u = vreinterpretq_s64_s32(c[i][q]), v = vreinterpretq_s64_s32(c[i][q + 1]);
                vst1q_s32(acc + (2 * i) * 16 + 8 * h + 2 * q, vreinterpretq_s32_s64(vzip1q_s64(u, v)));
                vst1q_s32(acc + (2 * i + 1) * 16 + 8 * h + 2 * q, vreinterpretq_s32_s64(vzip2q_s64(u, v)));
            }
    }
    epi_neon(g, acc, 16, m, rows, nb * 16, 16);
}

void tn_gemm_t8_i8mm(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + 2 * MM_NP <= m1; m += 2 * MM_NP) mm_tile(g, wb, m, MM_NP, 2 * MM_NP, nb);
        int rows = m1 - m;
        switch ((rows + 1) / 2) {                      /* the pixel tail, with its own unrolled tile */
        case 4: mm_tile(g, wb, m, 4, rows, nb); break;
        case 3: mm_tile(g, wb, m, 3, rows, nb); break;
        case 2: mm_tile(g, wb, m, 2, rows, nb); break;
        case 1: mm_tile(g, wb, m, 1, rows, nb); break;
        default: break;
        }
    }
}
#endif
