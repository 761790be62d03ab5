/* The AVX-512 epilogue, shared by the AVX-512 and AMX files (a static function, so it compiles under each
 * file's target). Same IEEE operations in the same order as tn_epilogue. */
#ifndef TN_EPI_AVX512_H
#define TN_EPI_AVX512_H
#include "epi_avx2.h"

/* The epilogue 16 channels at a time (one zmm) into rows of o (row r at o + r·ldo, channel n0 first); same IEEE
 * operations in the same order as tn_epilogue. Only for tiles the AVX-512 path takes (epi_avx512_fits). */
static inline int epi_avx512_fits(const tn_gemm_args *g, int n0, int *in_res) {
    *in_res = g->res && n0 >= g->res_off && n0 + 16 <= g->res_off + g->res_c;
    int mixed = g->res && !*in_res && n0 < g->res_off + g->res_c && n0 + 16 > g->res_off;
    return !mixed && g->act < TN_ACT_LOGISTIC && n0 + 16 <= g->N;
}

static inline __attribute__((always_inline)) void epi_avx512_rows(const tn_gemm_args *g, const int32_t *acc, int lda,
                                                                  int m, int rows, int n0, int in_res, float *o,
                                                                  size_t ldo) {
    __m512i zpw = _mm512_mullo_epi32(_mm512_set1_epi32(g->zp), _mm512_loadu_si512((const void *)(g->wsum + n0)));
    __m512 sc = _mm512_loadu_ps(g->scale + n0), bi = _mm512_loadu_ps(g->bias + n0), zero = _mm512_setzero_ps();
    __m512 slope = g->act == TN_ACT_PRELU ? _mm512_loadu_ps(g->prelu + n0) : _mm512_set1_ps(0.1f);
    for (int r = 0; r < rows; r++) {
        __m512i a = _mm512_sub_epi32(_mm512_loadu_si512((const void *)(acc + r * lda)), zpw);
        __m512 v = _mm512_add_ps(_mm512_mul_ps(tn_cvtepi32_ps512(a), sc), bi);
        if (in_res) v = _mm512_add_ps(v, _mm512_loadu_ps(g->res + g->res_pix[m + r] + n0 - g->res_off));
        if (g->act == TN_ACT_RELU) v = _mm512_max_ps(v, zero);
        else if (g->act == TN_ACT_LEAKY || g->act == TN_ACT_PRELU)
            v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), _mm512_mul_ps(slope, v), v);
        _mm512_storeu_ps(o + r * ldo, v);
    }
}

/* The epilogue into g's output rows m..; tiles that straddle a residual's channel range, a channel tail and
 * logistic and after go through the AVX2 epilogue. */
static inline __attribute__((always_inline)) void epi_avx512(const tn_gemm_args *g, const int32_t *acc, int lda, int m,
                                                             int rows, int n0) {
    int in_res;
    if (!epi_avx512_fits(g, n0, &in_res)) {
        epi_avx2(g, acc, lda, m, rows, n0, 16);
        return;
    }
    epi_avx512_rows(g, acc, lda, m, rows, n0, in_res, tn_out_row(g, m) + n0, (size_t)g->ldo);
}

#endif
