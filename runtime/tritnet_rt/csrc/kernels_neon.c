/* ARM NEON kernels, the baseline every ARM CPU with NEON runs: AArch64 (Cortex-A53/A72: Raspberry Pi 3 and 4)
 * and 32-bit ARMv7 (Raspberry Pi OS 32-bit, whose compiler targets armv6 + VFP: this file alone enables NEON,
 * and cpu.c checks HWCAP_NEON before it is used). CPUs with the dot-product or I8MM extension get the int8
 * GEMM from kernels_neon_dot.c / kernels_neon_i8mm.c and everything else from here. With -DTN_SIMDE the
 * AArch64 code compiles against SIMDe's emulation so it can be tested on x86. */
#include "tn.h"
#ifdef TN_HAVE_NEON
#if defined(TN_ARM32) && !defined(__ARM_NEON)
#pragma GCC target("fpu=neon")
#endif
#ifdef TN_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/arm/neon.h>
#else
#include <arm_neon.h>
#endif
#include <string.h>
#include "tn_epilogue.h"
#include "tn_gconv.h"
#ifdef TN_ARM32
/* 16 q registers: one pixel per tile; vpaddq_s32 is AArch64's */
#define T8_MR 1
#define TT_MR 1
#define EPILOGUE tn_epilogue
static inline int32x4_t tn_paddq_s32(int32x4_t a, int32x4_t b) {
    return vcombine_s32(vpadd_s32(vget_low_s32(a), vget_high_s32(a)), vpadd_s32(vget_low_s32(b), vget_high_s32(b)));
}
#else
#include "epi_neon.h"
#define T8_MR 2
#define TT_MR 3
#define EPILOGUE epi_neon
#define tn_paddq_s32 vpaddq_s32
#endif

static inline uint32_t tn_load4u(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* int8 path, no dot product. Per 4-byte step k4 the weights are 4 q registers of 4 channels x 4 bytes; the
 * pixel's 4 activation bytes, broadcast to every 32-bit lane, line up with each of them, so a smlal/smlal2
 * pair does 16 multiply-adds into int16 lanes (channel, byte), where the old kernel spent a load, an eor and a
 * dup per activation byte for two smlal. 16 activation bytes come in with one load and one eor (s8 = u - 128),
 * then a dup per k4 group. |product| <= 128, so a lane holds 255 steps before it is widened (sadalp) into
 * int32; the sum over u is restored by running the epilogue with zp - 128: acc - (zp - 128)·wsum =
 * Σ u·w - zp·wsum, exactly. */
#define T8_WIDEN 255
/* one k4 group: the block at WP (a pointer walked past it) against group LANE of each pixel's 16 activation
 * bytes A[p] */
static inline int8x16_t tn_vld1q_s8_inc(const int8_t **p) {
#if defined(TN_ARM32) && defined(__GNUC__)
    /* ARMv7's vld1 addresses [r] or [r]! (post-increment) only; GCC turns a walked pointer back into base +
     * offset and spends an add per load (75 instructions per 256 multiply-adds instead of 57) */
    int8x16_t v;
    __asm__("vld1.8 {%e0-%f0}, [%1]!" : "=w"(v), "+r"(*p) : "m"(*(const int8_t (*)[16])*p));
#else
    int8x16_t v = vld1q_s8(*p);
    *p += 16;
#endif
    return v;
}
#define T8_W(WP) tn_vld1q_s8_inc(&WP)
#ifdef TN_ARM32       /* the broadcast group as a d register: vmlal_s8 on the weights' two halves */
#define T8_K4(WP, A, LANE) { \
    int8x16_t w0_ = T8_W(WP), w1_ = T8_W(WP), w2_ = T8_W(WP), w3_ = T8_W(WP); \
    for (int p = 0; p < mr; p++) { \
        int8x8_t a_ = vreinterpret_s8_u32(vdup_lane_u32((LANE) < 2 ? vget_low_u32(vreinterpretq_u32_s8(A[p])) \
                                                                   : vget_high_u32(vreinterpretq_u32_s8(A[p])), (LANE) & 1)); \
        c16[p][0] = vmlal_s8(c16[p][0], vget_low_s8(w0_), a_); c16[p][1] = vmlal_s8(c16[p][1], vget_high_s8(w0_), a_); \
        c16[p][2] = vmlal_s8(c16[p][2], vget_low_s8(w1_), a_); c16[p][3] = vmlal_s8(c16[p][3], vget_high_s8(w1_), a_); \
        c16[p][4] = vmlal_s8(c16[p][4], vget_low_s8(w2_), a_); c16[p][5] = vmlal_s8(c16[p][5], vget_high_s8(w2_), a_); \
        c16[p][6] = vmlal_s8(c16[p][6], vget_low_s8(w3_), a_); c16[p][7] = vmlal_s8(c16[p][7], vget_high_s8(w3_), a_); } }
#else                 /* smlal on the low halves, smlal2 on the high ones (the group fills all 4 lanes) */
#define T8_K4(WP, A, LANE) { \
    int8x16_t w0_ = T8_W(WP), w1_ = T8_W(WP), w2_ = T8_W(WP), w3_ = T8_W(WP); \
    for (int p = 0; p < mr; p++) { \
        int8x16_t a_ = vreinterpretq_s8_u32(vdupq_laneq_u32(vreinterpretq_u32_s8(A[p]), LANE)); \
        int8x8_t l_ = vget_low_s8(a_); \
        c16[p][0] = vmlal_s8(c16[p][0], vget_low_s8(w0_), l_); c16[p][1] = vmlal_high_s8(c16[p][1], w0_, a_); \
        c16[p][2] = vmlal_s8(c16[p][2], vget_low_s8(w1_), l_); c16[p][3] = vmlal_high_s8(c16[p][3], w1_, a_); \
        c16[p][4] = vmlal_s8(c16[p][4], vget_low_s8(w2_), l_); c16[p][5] = vmlal_high_s8(c16[p][5], w2_, a_); \
        c16[p][6] = vmlal_s8(c16[p][6], vget_low_s8(w3_), l_); c16[p][7] = vmlal_high_s8(c16[p][7], w3_, a_); } }
#endif

static inline __attribute__((always_inline)) void t8_tile(const tn_gemm_args *g, const int8_t *wb, int m, int mr, int nb) {
    int16x8_t c16[T8_MR][8];                         /* [pixel][2·q + half]: channels 4q + 2·half, +1 */
    int32_t c32[T8_MR][8][4];                        /* in memory: registers are for c16 (AArch64 32, ARMv7 16) */
    memset(c32, 0, sizeof c32);
    for (int p = 0; p < mr; p++)
        for (int i = 0; i < 8; i++) c16[p][i] = vdupq_n_s16(0);
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const int8_t *wk = wb;
    int steps = 0;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[T8_MR];
        int8x16_t av[T8_MR];
        for (int p = 0; p < mr; p++) ap[p] = g->a + g->pix[m + p] + g->seg[s];
        for (int j = 0; j < g->L;) {
            int run = (g->L - j) / 4 < T8_WIDEN - steps ? (g->L - j) / 4 : T8_WIDEN - steps, e = j + 4 * run;
            for (; j + 16 <= e; j += 16) {
                for (int p = 0; p < mr; p++) av[p] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ap[p] + j), flip));
                T8_K4(wk, av, 0) T8_K4(wk, av, 1) T8_K4(wk, av, 2) T8_K4(wk, av, 3)
            }
            for (; j < e; j += 4) {
                for (int p = 0; p < mr; p++) av[p] = vreinterpretq_s8_u32(vdupq_n_u32(tn_load4u(ap[p] + j) ^ 0x80808080u));
                T8_K4(wk, av, 0)
            }
            if ((steps += run) == T8_WIDEN) {
                for (int p = 0; p < mr; p++)
                    for (int i = 0; i < 8; i++) {
                        vst1q_s32(c32[p][i], vpadalq_s16(vld1q_s32(c32[p][i]), c16[p][i]));
                        c16[p][i] = vdupq_n_s16(0);
                    }
                steps = 0;
            }
        }
    }
    int32_t acc[T8_MR * 16];
    for (int p = 0; p < mr; p++)
        for (int q = 0; q < 4; q++)    /* lanes (channel, bytes 0+1 / 2+3) summed pairwise: 4 channels */
            vst1q_s32(acc + p * 16 + 4 * q, tn_paddq_s32(vpadalq_s16(vld1q_s32(c32[p][2 * q]), c16[p][2 * q]),
                                                         vpadalq_s16(vld1q_s32(c32[p][2 * q + 1]), c16[p][2 * q + 1])));
    EPILOGUE(g, acc, 16, m, mr, nb * 16, 16);
}

void tn_gemm_t8_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    tn_gemm_args gs = *g;
    gs.zp = g->zp - 128;                              /* the sums are over u - 128 */
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + T8_MR <= m1; m += T8_MR) t8_tile(&gs, wb, m, T8_MR, nb);
        for (; m < m1; m++) t8_tile(&gs, wb, m, 1, nb);
    }
}

/* popcount path, TT_MR pixels per tile sharing each weight load. Per 64-bit word and channel the step adds
 * count(both) - 2·count(neg), in [-8, 8] per byte: kept in wrapping 8-bit lanes (cnt, add, mls), exact as
 * int8 for 15 steps, then widened (saddlp, sadalp) into int32. The old kernel summed counts into uint16
 * lanes that wrapped after 4096 words (K = 262,144 bits). */
#define TT_WIDEN 15
static inline __attribute__((always_inline)) void tt_tile(const tn_gemm_args *g, const uint64_t *wb, int m, int mr, int nb) {
    int KW = g->KW;
    const uint64_t *A[TT_MR];
    uint8x16_t c8[TT_MR][4];                          /* [pixel][q]: channels 2q, 2q+1 */
    int32_t c32[TT_MR][4][4];                         /* in memory, as in t8_tile */
    memset(c32, 0, sizeof c32);
    for (int p = 0; p < mr; p++) {
        A[p] = (const uint64_t *)g->a + (size_t)(m + p) * 2 * KW;
        for (int q = 0; q < 4; q++) c8[p][q] = vdupq_n_u8(0);
    }
    const uint8x16_t two = vdupq_n_u8(2);
    for (int k0 = 0; k0 < KW; k0 += TT_WIDEN) {
        int k1 = k0 + TT_WIDEN < KW ? k0 + TT_WIDEN : KW;
        for (int k = k0; k < k1; k++) {
            const uint64_t *wk = wb + (size_t)k * 16;
            uint8x16_t wn[4], ws[4];
            for (int q = 0; q < 4; q++) {
                wn[q] = vreinterpretq_u8_u64(vld1q_u64(wk + 2 * q));
                ws[q] = vreinterpretq_u8_u64(vld1q_u64(wk + 8 + 2 * q));
            }
            for (int p = 0; p < mr; p++) {
                uint8x16_t an = vreinterpretq_u8_u64(vld1q_dup_u64(A[p] + k));
                uint8x16_t as = vreinterpretq_u8_u64(vld1q_dup_u64(A[p] + KW + k));
                for (int q = 0; q < 4; q++) {
                    uint8x16_t both = vandq_u8(an, wn[q]), neg = vandq_u8(both, veorq_u8(as, ws[q]));
                    c8[p][q] = vmlsq_u8(vaddq_u8(c8[p][q], vcntq_u8(both)), vcntq_u8(neg), two);
                }
            }
        }
        for (int p = 0; p < mr; p++)
            for (int q = 0; q < 4; q++) {
                vst1q_s32(c32[p][q], vpadalq_s16(vld1q_s32(c32[p][q]), vpaddlq_s8(vreinterpretq_s8_u8(c8[p][q]))));
                c8[p][q] = vdupq_n_u8(0);
            }
    }
    int32_t acc[TT_MR * 8];
    for (int p = 0; p < mr; p++)                      /* lanes (channel, half word) summed pairwise */
        for (int q = 0; q < 4; q += 2)
            vst1q_s32(acc + p * 8 + 2 * q, tn_paddq_s32(vld1q_s32(c32[p][q]), vld1q_s32(c32[p][q + 1])));
    EPILOGUE(g, acc, 8, m, mr, nb * 8, 8);
}

void tn_gemm_tt_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    for (int nb = nb0; nb < nb1; nb++) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * g->KW * 16;
        int m = m0;
        for (; m + TT_MR <= m1; m += TT_MR) tt_tile(g, wb, m, TT_MR, nb);
        for (; m < m1; m++) tt_tile(g, wb, m, 1, nb);
    }
}

#ifndef TN_ARM32
/* The float steps, same IEEE operations as the serial ones (AArch64 NEON keeps denormals). */

/* u = clamp(round_half_even(clamp(x·inv, ±512)) + zp, 0, 255): the same 1.5·2^23 rounding as the serial
 * code, then an exact conversion and saturating narrows for the final clamp. */
void tn_quant_u8_neon(const float *x, uint8_t *o, int n, float inv, int zp) {
    const float32x4_t vinv = vdupq_n_f32(inv), lo = vdupq_n_f32(-512.f), hi = vdupq_n_f32(512.f);
    const float32x4_t magic = vdupq_n_f32(12582912.f), z = vdupq_n_f32((float)zp);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        int32x4_t q[4];
        for (int k = 0; k < 4; k++) {
            float32x4_t v = vminq_f32(vmaxq_f32(vmulq_f32(vld1q_f32(x + i + 4 * k), vinv), lo), hi);
            q[k] = vcvtq_s32_f32(vaddq_f32(vsubq_f32(vaddq_f32(v, magic), magic), z));
        }
        int16x8_t h0 = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1])), h1 = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
        vst1q_u8(o + i, vcombine_u8(vqmovun_s16(h0), vqmovun_s16(h1)));
    }
    tn_quant_u8_serial(x + i, o + i, n - i, inv, zp);
}

/* as the serial a = x < a ? x : a, a compare and a select (vminq would let a NaN through): the minimum
 * starts at +0 and is only replaced by a smaller number, so it never becomes -0 or NaN and the lanes can be
 * merged in any order */
void tn_minmax_f32_neon(const float *x, size_t n, float *mn, float *mx) {
    float32x4_t a0 = vdupq_n_f32(0.f), a1 = a0, b0 = a0, b1 = a0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float32x4_t v0 = vld1q_f32(x + i), v1 = vld1q_f32(x + i + 4);
        a0 = vbslq_f32(vcltq_f32(v0, a0), v0, a0); b0 = vbslq_f32(vcgtq_f32(v0, b0), v0, b0);
        a1 = vbslq_f32(vcltq_f32(v1, a1), v1, a1); b1 = vbslq_f32(vcgtq_f32(v1, b1), v1, b1);
    }
    float ta[8], tb[8], ra, rb;
    vst1q_f32(ta, a0); vst1q_f32(ta + 4, a1); vst1q_f32(tb, b0); vst1q_f32(tb + 4, b1);
    tn_minmax_f32_serial(x + i, n - i, &ra, &rb);
    for (int k = 0; k < 8; k++) { ra = ta[k] < ra ? ta[k] : ra; rb = tb[k] > rb ? tb[k] : rb; }
    *mn = ra; *mx = rb;
}

/* 8 channels per byte: t = a·x + b (no fused multiply-add), the two compares narrowed to bytes and summed
 * against the bit weights */
void tn_tact_bits_neon(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg) {
    const float32x4_t hi = vdupq_n_f32(0.5f), lo = vdupq_n_f32(-0.5f);
    static const uint8_t bit[8] = {1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x8_t bits = vld1_u8(bit);
    for (int c = 0; c < C; c += 8) {
        float32x4_t v0 = vaddq_f32(vmulq_f32(vld1q_f32(a + c), vld1q_f32(x + c)), vld1q_f32(b + c));
        float32x4_t v1 = vaddq_f32(vmulq_f32(vld1q_f32(a + c + 4), vld1q_f32(x + c + 4)), vld1q_f32(b + c + 4));
        uint16x8_t neg = vcombine_u16(vmovn_u32(vcltq_f32(v0, lo)), vmovn_u32(vcltq_f32(v1, lo)));
        uint16x8_t pos = vcombine_u16(vmovn_u32(vcgeq_f32(v0, hi)), vmovn_u32(vcgeq_f32(v1, hi)));
        nz[c >> 3] = vaddv_u8(vand_u8(vmovn_u16(vorrq_u16(pos, neg)), bits));
        sg[c >> 3] = vaddv_u8(vand_u8(vmovn_u16(neg), bits));
    }
}
#ifndef TN_ARM32
/* The depthwise conv (tn_gconv.h), 4 channels a step; other groupings run the serial kernel. AArch64 only:
 * 32-bit NEON flushes denormals to zero. */
static void gconv_tap_neon(const tn_gconv_args *g, float *o, const float *w, const float *x) {
    int n = 0, N = g->N;
    for (; n + 4 <= N; n += 4)
        vst1q_f32(o + n, vaddq_f32(vld1q_f32(o + n), vmulq_f32(vld1q_f32(w + n), vld1q_f32(x + n))));
    for (; n < N; n++) o[n] = o[n] + w[n] * x[n];
}

static void gconv_finish_neon(const tn_gconv_args *g, float *o) {
    int n = 0;
    const float32x4_t zero = vdupq_n_f32(0.f);
    if (g->act == TN_ACT_LINEAR || g->act == TN_ACT_RELU || g->act == TN_ACT_LEAKY)
        for (; n + 4 <= g->N; n += 4) {
            float32x4_t v = vaddq_f32(vmulq_f32(vld1q_f32(o + n), vld1q_f32(g->scale + n)), vld1q_f32(g->bias + n));
            /* v > 0 ? v : x, as a select: NaN and -0 take x, as in tn_act */
            if (g->act == TN_ACT_RELU) v = vbslq_f32(vcgtq_f32(v, zero), v, zero);
            else if (g->act == TN_ACT_LEAKY) v = vbslq_f32(vcgtq_f32(v, zero), v, vmulq_f32(vdupq_n_f32(0.1f), v));
            vst1q_f32(o + n, v);
        }
    tn_gconv_finish_from(g, o, n);
}

void tn_gconv_row_neon(const tn_gconv_args *g, int b, int oy) {
    if (tn_gconv_is_depthwise(g)) tn_gconv_frame(g, b, oy, gconv_tap_neon, gconv_finish_neon);
    else tn_gconv_row_serial(g, b, oy);
}
#endif
#endif
#endif
