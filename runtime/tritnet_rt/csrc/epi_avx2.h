/* The AVX2 epilogue, 8 channels at a time, shared by the AVX2 and AVX-512 files (a static function, so it
 * compiles under each file's target). Same IEEE operations in the same order as tn_epilogue. */
#ifndef TN_EPI_AVX2_H
#define TN_EPI_AVX2_H
#include "simd_x86.h"
#include "tn_epilogue.h"

static void epi_avx2(const tn_gemm_args *g, const int32_t *acc, int lda, int m, int rows, int n0, int width) {
    int n = n0, n1 = n0 + width < g->N ? n0 + width : g->N;
    for (; n + 8 <= n1; n += 8) {
        int in_res = g->res && n >= g->res_off && n + 8 <= g->res_off + g->res_c;
        int mixed = g->res && !in_res && n < g->res_off + g->res_c && n + 8 > g->res_off;
        if (mixed || g->act >= TN_ACT_LOGISTIC) {
            for (int r = 0; r < rows; r++) tn_epilogue(g, acc + r * lda + (n - n0), lda, m + r, 1, n, 8);
            continue;
        }
        __m256i zpw = _mm256_mullo_epi32(_mm256_set1_epi32(g->zp), _mm256_loadu_si256((const __m256i *)(g->wsum + n)));
        __m256 sc = _mm256_loadu_ps(g->scale + n), bi = _mm256_loadu_ps(g->bias + n), zero = _mm256_setzero_ps();
        __m256 slope = g->act == TN_ACT_PRELU ? _mm256_loadu_ps(g->prelu + n) : _mm256_set1_ps(0.1f);
        for (int r = 0; r < rows; r++) {
            __m256i a = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(acc + r * lda + n - n0)), zpw);
            __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(a), sc), bi);
            if (in_res) v = _mm256_add_ps(v, _mm256_loadu_ps(g->res + g->res_pix[m + r] + n - g->res_off));
            if (g->act == TN_ACT_RELU) v = _mm256_max_ps(v, zero);
            else if (g->act == TN_ACT_LEAKY || g->act == TN_ACT_PRELU)
                v = _mm256_blendv_ps(_mm256_mul_ps(slope, v), v, _mm256_cmp_ps(v, zero, _CMP_GT_OQ));
            _mm256_storeu_ps(tn_out_row(g, m + r) + n, v);
        }
    }
    if (n < n1)
        for (int r = 0; r < rows; r++) tn_epilogue(g, acc + r * lda + (n - n0), lda, m + r, 1, n, n1 - n);
}

#endif
