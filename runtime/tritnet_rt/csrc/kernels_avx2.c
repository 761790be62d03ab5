/* AVX2 kernels. Ternary weights make vpmaddubsw safe: a pair sum |u0·w0 + u1·w1| <= 510, so 64 steps
 * accumulate in int16 without overflow before widening to int32 (2 instructions per 32 MACs). */
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
#if !defined(TN_SIMDE) && defined(__GNUC__)
#pragma GCC target("avx2,fma,popcnt")
#endif
#include "simd_x86.h"
#include "tn_epilogue.h"
#include "tn_gconv.h"
#include "epi_avx2.h"

/* 8 values a step, the tail as the serial kernel. Its arithmetic in fewer steps, as the AVX-512 kernel: rounding
 * half to even by the conversion, the zero point added on integers, and the [0, 255] clamp by the two saturating
 * packs (int32 -> uint16 takes negatives to 0; |v| <= 512 keeps every value inside int16 for the second); NaN
 * becomes -512 as in the serial kernel, so 0. */
void tn_quant_u8_avx2(const float *x, uint8_t *o, int n, float inv, int zp) {
    const __m256 vinv = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-512.f), hi = _mm256_set1_ps(512.f);
    const __m256i z = _mm256_set1_epi32(zp);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv), lo), hi);
        __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), z);
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        _mm_storel_epi64((__m128i *)(o + i), _mm_packus_epi16(w, w));
    }
    tn_quant_u8_serial(x + i, o + i, n - i, inv, zp);
}

void tn_tact_bits_avx2(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg) {
    const __m256 hi = _mm256_set1_ps(0.5f), lo = _mm256_set1_ps(-0.5f);
    for (int c = 0; c < C; c += 8) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(x + c)), _mm256_loadu_ps(b + c));
        __m256 neg = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
        nz[c >> 3] = (uint8_t)_mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(v, hi, _CMP_GE_OQ), neg));
        sg[c >> 3] = (uint8_t)_mm256_movemask_ps(neg);
    }
}

void tn_minmax_f32_avx2(const float *x, size_t n, float *mn, float *mx) {
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a = _mm256_min_ps(v, a); b = _mm256_max_ps(v, b);
    }
    float ta[8], tb[8], ra, rb;
    _mm256_storeu_ps(ta, a); _mm256_storeu_ps(tb, b);
    tn_minmax_f32_serial(x + i, n - i, &ra, &rb);
    for (int k = 0; k < 8; k++) { ra = ta[k] < ra ? ta[k] : ra; rb = tb[k] > rb ? tb[k] : rb; }
    *mn = ra; *mx = rb;
}


/* rows x 16 channels; acc16 in named registers (4 x 2 ymm), int32 sums in memory, widened every 64 steps */
#define T8_STEP(P, A0, A1) { __m256i b_ = _mm256_set1_epi32(tn_load4(P + j)); \
    A0 = _mm256_add_epi16(A0, _mm256_maddubs_epi16(b_, w0)); A1 = _mm256_add_epi16(A1, _mm256_maddubs_epi16(b_, w1)); }
/* the first flush stores, later ones add: no zeroing of acc, which costs as much as a short GEMM */
#define T8_FLUSH(R, A0, A1) { \
    __m256i *d0_ = (__m256i *)(acc + (R) * 16), *d1_ = (__m256i *)(acc + (R) * 16 + 8); \
    __m256i s0_ = _mm256_madd_epi16(A0, ones), s1_ = _mm256_madd_epi16(A1, ones); \
    if (!first) { s0_ = _mm256_add_epi32(_mm256_loadu_si256(d0_), s0_); s1_ = _mm256_add_epi32(_mm256_loadu_si256(d1_), s1_); } \
    _mm256_storeu_si256(d0_, s0_); _mm256_storeu_si256(d1_, s1_); \
    A0 = A1 = _mm256_setzero_si256(); }

static void t8_tile6(const tn_gemm_args *g, const int8_t *wb, int m, int nb) {
    int32_t acc[96];
    int first = 1;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m256i c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const int8_t *wk = wb;
    int steps = 0;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *p0 = g->a + g->pix[m] + g->seg[s], *p1 = g->a + g->pix[m + 1] + g->seg[s];
        const uint8_t *p2 = g->a + g->pix[m + 2] + g->seg[s], *p3 = g->a + g->pix[m + 3] + g->seg[s];
        const uint8_t *p4 = g->a + g->pix[m + 4] + g->seg[s], *p5 = g->a + g->pix[m + 5] + g->seg[s];
        for (int j0 = 0; j0 < g->L; j0 += 256) {           /* at most 64 steps between widenings */
            int jn = j0 + 256 < g->L ? j0 + 256 : g->L;
            if (steps + (jn - j0) / 4 > 64) {
                steps = 0;
                T8_FLUSH(0, c00, c01) T8_FLUSH(1, c10, c11) T8_FLUSH(2, c20, c21) T8_FLUSH(3, c30, c31) T8_FLUSH(4, c40, c41) T8_FLUSH(5, c50, c51)
                first = 0;
            }
            steps += (jn - j0) / 4;
            for (int j = j0; j < jn; j += 4, wk += 64) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)wk), w1 = _mm256_loadu_si256((const __m256i *)(wk + 32));
                T8_STEP(p0, c00, c01) T8_STEP(p1, c10, c11) T8_STEP(p2, c20, c21) T8_STEP(p3, c30, c31) T8_STEP(p4, c40, c41) T8_STEP(p5, c50, c51)
            }
        }
    }
    T8_FLUSH(0, c00, c01) T8_FLUSH(1, c10, c11) T8_FLUSH(2, c20, c21) T8_FLUSH(3, c30, c31) T8_FLUSH(4, c40, c41) T8_FLUSH(5, c50, c51)
    epi_avx2(g, acc, 16, m, 6, nb * 16, 16);
}

static void t8_tile4(const tn_gemm_args *g, const int8_t *wb, int m, int nb) {
    int32_t acc[64];
    int first = 1;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const int8_t *wk = wb;
    int steps = 0;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *p0 = g->a + g->pix[m] + g->seg[s], *p1 = g->a + g->pix[m + 1] + g->seg[s];
        const uint8_t *p2 = g->a + g->pix[m + 2] + g->seg[s], *p3 = g->a + g->pix[m + 3] + g->seg[s];
        for (int j0 = 0; j0 < g->L; j0 += 256) {           /* at most 64 steps between widenings */
            int jn = j0 + 256 < g->L ? j0 + 256 : g->L;
            if (steps + (jn - j0) / 4 > 64) {
                steps = 0;
                T8_FLUSH(0, c00, c01) T8_FLUSH(1, c10, c11) T8_FLUSH(2, c20, c21) T8_FLUSH(3, c30, c31)
                first = 0;
            }
            steps += (jn - j0) / 4;
            for (int j = j0; j < jn; j += 4, wk += 64) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)wk), w1 = _mm256_loadu_si256((const __m256i *)(wk + 32));
                T8_STEP(p0, c00, c01) T8_STEP(p1, c10, c11) T8_STEP(p2, c20, c21) T8_STEP(p3, c30, c31)
            }
        }
    }
    T8_FLUSH(0, c00, c01) T8_FLUSH(1, c10, c11) T8_FLUSH(2, c20, c21) T8_FLUSH(3, c30, c31)
    epi_avx2(g, acc, 16, m, 4, nb * 16, 16);
}

static void t8_tile1(const tn_gemm_args *g, const int8_t *wb, int m, int nb) {
    int32_t acc[16];
    int first = 1;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00;
    const int8_t *wk = wb;
    int steps = 0;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *p0 = g->a + g->pix[m] + g->seg[s];
        for (int j0 = 0; j0 < g->L; j0 += 256) {
            int jn = j0 + 256 < g->L ? j0 + 256 : g->L;
            if (steps + (jn - j0) / 4 > 64) { steps = 0; T8_FLUSH(0, c00, c01) first = 0; }
            steps += (jn - j0) / 4;
            for (int j = j0; j < jn; j += 4, wk += 64) {
                __m256i w0 = _mm256_loadu_si256((const __m256i *)wk), w1 = _mm256_loadu_si256((const __m256i *)(wk + 32));
                T8_STEP(p0, c00, c01)
            }
        }
    }
    T8_FLUSH(0, c00, c01)
    epi_avx2(g, acc, 16, m, 1, nb * 16, 16);
}

void tn_gemm_t8_avx2(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + 6 <= m1; m += 6) t8_tile6(g, wb, m, nb);
        for (; m + 4 <= m1; m += 4) t8_tile4(g, wb, m, nb);
        for (; m < m1; m++) t8_tile1(g, wb, m, nb);
    }
}

/* popcount: bytes counted with a pshufb table, summed per 64-bit lane with vpsadbw. Each step adds
 * count(both) - 2·count(neg) + 8 in [0, 16] per byte, so 15 steps fit a byte before flushing. */
static inline __m256i pc8(__m256i x, __m256i lut, __m256i low) {
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low)));
}

#define TT_MR 2
static inline __attribute__((always_inline)) void tt_tile(const tn_gemm_args *g, const uint64_t *wb, int m, int mr, int nb) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8), zero = _mm256_setzero_si256();
    int KW = g->KW;
    const uint64_t *A[TT_MR];
    __m256i b8[TT_MR][2], s64[TT_MR][2];
    for (int p = 0; p < mr; p++) {
        A[p] = (const uint64_t *)g->a + (size_t)(m + p) * 2 * KW;
        b8[p][0] = b8[p][1] = s64[p][0] = s64[p][1] = zero;
    }
    int steps = 0;
    for (int k = 0; k < KW; k++) {
        const uint64_t *wk = wb + (size_t)k * 16;
        __m256i wn0 = _mm256_loadu_si256((const __m256i *)wk), wn1 = _mm256_loadu_si256((const __m256i *)(wk + 4));
        __m256i ws0 = _mm256_loadu_si256((const __m256i *)(wk + 8)), ws1 = _mm256_loadu_si256((const __m256i *)(wk + 12));
        for (int p = 0; p < mr; p++) {
            __m256i anz = _mm256_set1_epi64x(tn_load8(A[p] + k)), asg = _mm256_set1_epi64x(tn_load8(A[p] + KW + k));
            __m256i both0 = _mm256_and_si256(anz, wn0), both1 = _mm256_and_si256(anz, wn1);
            __m256i neg0 = _mm256_and_si256(both0, _mm256_xor_si256(asg, ws0));
            __m256i neg1 = _mm256_and_si256(both1, _mm256_xor_si256(asg, ws1));
            __m256i n0 = pc8(neg0, lut, low), n1 = pc8(neg1, lut, low);
            b8[p][0] = _mm256_add_epi8(b8[p][0], _mm256_sub_epi8(_mm256_add_epi8(pc8(both0, lut, low), eight), _mm256_add_epi8(n0, n0)));
            b8[p][1] = _mm256_add_epi8(b8[p][1], _mm256_sub_epi8(_mm256_add_epi8(pc8(both1, lut, low), eight), _mm256_add_epi8(n1, n1)));
        }
        if (++steps == 15 || k == KW - 1) {
            __m256i bias = _mm256_set1_epi64x(64 * steps);
            for (int p = 0; p < mr; p++)
                for (int h = 0; h < 2; h++) {
                    s64[p][h] = _mm256_add_epi64(s64[p][h], _mm256_sub_epi64(_mm256_sad_epu8(b8[p][h], zero), bias));
                    b8[p][h] = zero;
                }
            steps = 0;
        }
    }
    int32_t acc[TT_MR * 8];
    for (int p = 0; p < mr; p++)
        for (int h = 0; h < 2; h++) {
            int64_t t[4];
            _mm256_storeu_si256((__m256i *)t, s64[p][h]);
            for (int i = 0; i < 4; i++) acc[p * 8 + h * 4 + i] = (int32_t)t[i];
        }
    epi_avx2(g, acc, 8, m, mr, nb * 8, 8);
}

void tn_gemm_tt_avx2(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    for (int nb = nb0; nb < nb1; nb++) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * g->KW * 16;
        int m = m0;
        for (; m + TT_MR <= m1; m += TT_MR) tt_tile(g, wb, m, TT_MR, nb);
        if (m < m1) tt_tile(g, wb, m, 1, nb);
    }
}
/* The depthwise conv (tn_gconv.h), 8 channels a step; other groupings run the serial kernel. */
static void gconv_tap_avx2(const tn_gconv_args *g, float *o, const float *w, const float *x) {
    int n = 0, N = g->N;
    for (; n + 8 <= N; n += 8)
        _mm256_storeu_ps(o + n, _mm256_add_ps(_mm256_loadu_ps(o + n), _mm256_mul_ps(_mm256_loadu_ps(w + n),
                                                                                   _mm256_loadu_ps(x + n))));
    for (; n < N; n++) o[n] = o[n] + w[n] * x[n];
}

static void gconv_finish_avx2(const tn_gconv_args *g, float *o) {
    int n = 0;
    if (g->act == TN_ACT_LINEAR || g->act == TN_ACT_RELU || g->act == TN_ACT_LEAKY)
        for (; n + 8 <= g->N; n += 8) {
            __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(o + n), _mm256_loadu_ps(g->scale + n)),
                                     _mm256_loadu_ps(g->bias + n)), zero = _mm256_setzero_ps();
            if (g->act == TN_ACT_RELU) v = _mm256_max_ps(v, zero);
            else if (g->act == TN_ACT_LEAKY)
                v = _mm256_blendv_ps(_mm256_mul_ps(_mm256_set1_ps(0.1f), v), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
            _mm256_storeu_ps(o + n, v);
        }
    tn_gconv_finish_from(g, o, n);
}

void tn_gconv_row_avx2(const tn_gconv_args *g, int b, int oy) {
    if (tn_gconv_is_depthwise(g)) tn_gconv_frame(g, b, oy, gconv_tap_avx2, gconv_finish_avx2);
    else tn_gconv_row_serial(g, b, oy);
}

#endif
