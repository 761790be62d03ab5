/* AVX-512 kernels: VPDPBUSD (VNNI) for u8 x s8 dot products, VPOPCNTQ for the bit-plane path. */
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
#if !defined(TN_SIMDE) && defined(__GNUC__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,avx2,fma,popcnt")
#endif
#include "simd_x86.h"
#include "tn_epilogue.h"
#include "epi_avx2.h"

#define T8_MR 12
static inline __attribute__((always_inline)) void t8_tile(const tn_gemm_args *g, const int8_t *wb, int m, int mr, int nb) {
    __m512i acc[T8_MR];
    for (int p = 0; p < mr; p++) acc[p] = _mm512_setzero_si512();
    const int8_t *wk = wb;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[T8_MR];
        for (int p = 0; p < mr; p++) ap[p] = g->a + g->pix[m + p] + g->seg[s];
        for (int j = 0; j < g->L; j += 4, wk += 64) {
            __m512i w = _mm512_loadu_si512((const void *)wk);
            for (int p = 0; p < mr; p++)
                acc[p] = _mm512_dpbusd_epi32(acc[p], _mm512_set1_epi32(tn_load4(ap[p] + j)), w);
        }
    }
    int32_t out[T8_MR * 16];
    for (int p = 0; p < mr; p++) _mm512_storeu_si512((void *)(out + p * 16), acc[p]);
    epi_avx2(g, out, 16, m, mr, nb * 16, 16);
}

void tn_gemm_t8_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4;
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * K4 * 64;
        int m = m0;
        for (; m + T8_MR <= m1; m += T8_MR) t8_tile(g, wb, m, T8_MR, nb);
        for (; m + 4 <= m1; m += 4) t8_tile(g, wb, m, 4, nb);
        for (; m < m1; m++) t8_tile(g, wb, m, 1, nb);
    }
}

#define TT_MR 8
static inline __attribute__((always_inline)) void tt_tile(const tn_gemm_args *g, const uint64_t *wb, int m, int mr, int nb) {
    int KW = g->KW;
    const uint64_t *A[TT_MR];
    __m512i acc[TT_MR];
    for (int p = 0; p < mr; p++) {
        A[p] = (const uint64_t *)g->a + (size_t)(m + p) * 2 * KW;
        acc[p] = _mm512_setzero_si512();
    }
    for (int k = 0; k < KW; k++) {
        __m512i wn = _mm512_loadu_si512((const void *)(wb + (size_t)k * 16));
        __m512i ws = _mm512_loadu_si512((const void *)(wb + (size_t)k * 16 + 8));
        for (int p = 0; p < mr; p++) {
            __m512i both = _mm512_and_si512(_mm512_set1_epi64(tn_load8(A[p] + k)), wn);
            /* 0x60: a & (b ^ c) with a = both, b = sign(a), c = sign(w) */
            __m512i neg = _mm512_ternarylogic_epi64(both, _mm512_set1_epi64(tn_load8(A[p] + KW + k)), ws, 0x60);
            acc[p] = _mm512_add_epi64(acc[p], _mm512_sub_epi64(_mm512_popcnt_epi64(both),
                                                               _mm512_slli_epi64(_mm512_popcnt_epi64(neg), 1)));
        }
    }
    int32_t out[TT_MR * 8];
    for (int p = 0; p < mr; p++) {
        int64_t t[8];
        _mm512_storeu_si512((void *)t, acc[p]);
        for (int i = 0; i < 8; i++) out[p * 8 + i] = (int32_t)t[i];
    }
    epi_avx2(g, out, 8, m, mr, nb * 8, 8);
}

void tn_gemm_tt_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    for (int nb = nb0; nb < nb1; nb++) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * g->KW * 16;
        int m = m0;
        for (; m + TT_MR <= m1; m += TT_MR) tt_tile(g, wb, m, TT_MR, nb);
        for (; m < m1; m++) tt_tile(g, wb, m, 1, nb);
    }
}
#endif
