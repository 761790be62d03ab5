/* AVX-512 kernels: VPDPBUSD (VNNI) for u8 x s8 dot products, VPOPCNTQ for the bit-plane path. */
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
#if !defined(TN_SIMDE) && defined(__GNUC__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,avx2,fma,popcnt")
#endif
#include <float.h>
#include <stdlib.h>
#include "simd_x86.h"
#include "tn_epilogue.h"
#include "epi_avx512.h"

/* The fused pool's last step: windows of four conv rows (row r of channel block b at conv + r·ldc + 16 b, for
 * blocks n0/16.. of which nblk) maxed in pool_row's order (v = x > v ? x : v from -FLT_MAX: MAXPS(x, v)) into
 * the pooled rows q0.. of g->out; only the layer's channels are written. */
static void pool_windows(const tn_gemm_args *g, const float *conv, int ldc, int nwin, int n0, int nblk, int q0) {
    for (int b = 0; b < nblk && n0 + 16 * b < g->N; b++) {
        int n = n0 + 16 * b, cnt = g->N - n < 16 ? g->N - n : 16;
        for (int w = 0; w < nwin; w++) {
            __m512 x = _mm512_set1_ps(-FLT_MAX);
            for (int i = 0; i < 4; i++)
                x = _mm512_max_ps(_mm512_loadu_ps(conv + (size_t)(4 * w + i) * ldc + 16 * b), x);
            float *o = g->out + (size_t)(q0 + w) * g->ldo + n;
            if (cnt == 16) {
                _mm512_storeu_ps(o, x);
            } else {
                float t[16];
                _mm512_storeu_ps(t, x);
                memcpy(o, t, sizeof(float) * (size_t)cnt);
            }
        }
    }
}

/* *f = *g with its epilogue writing row r, channel n at conv[r·ldc + n - n0] (zeros first where the layer's
 * channels end inside the conv's width: the epilogue writes only those) */
static void conv_rows(const tn_gemm_args *g, float *conv, int ldc, int rows, int n0, tn_gemm_args *f) {
    if (g->N < n0 + ldc) memset(conv, 0, sizeof(float) * (size_t)rows * ldc);
    *f = *g;
    f->out = (float *)((uintptr_t)conv - (uintptr_t)n0 * sizeof(float));
    f->ldo = ldc;
    f->m_base = 0;
}

/* A tile's sums through the epilogue: out rows m.. (q0 < 0), or (q0 >= 0: the fused pool) windows of four pixels
 * pooled into the pooled row at q0.. */
static inline __attribute__((always_inline)) void t8_epilogue(const tn_gemm_args *g, const int32_t *acc, int lda,
                                                              int m, int rows, int n0, int q0) {
    if (q0 < 0) {
        epi_avx512(g, acc, lda, m, rows, n0);
        return;
    }
    float v[12 * 16];
    int in_res;
    if (epi_avx512_fits(g, n0, &in_res)) {            /* no copy of g: reading a field of the copy stalled */
        epi_avx512_rows(g, acc, lda, 0, rows, n0, 0, v, 16);
    } else {
        tn_gemm_args e;
        conv_rows(g, v, 16, 12, n0, &e);
        epi_avx512(&e, acc, lda, 0, rows, n0);
    }
    pool_windows(g, v, 16, rows / 4, n0, 1, q0);
}

/* 6 pixels x 64 channels (4 blocks of 16): 24 accumulators, and per step 4 weight loads and 6 broadcasts
 * for 24 VPDPBUSD, where the 12 x 16 tile needs 13 loads for 12. Weight blocks nb..nb+3 lie wstride apart.
 * rows < 6 (a range's last pixels): the missing rows repeat the last pixel and are not written, which keeps one
 * pass over the weights for them (pixel by pixel, each read the 64 channels' weights again: 5 of a 5x7 layer's
 * 35 pixels took a third of its time). */
static inline __attribute__((always_inline)) void t8_tile_6x4(const tn_gemm_args *g, const int8_t *wb, size_t wstride,
                                                              const int32_t *pix, int m, int nb, int rows) {
    __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    __m512i c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
    __m512i c40 = c00, c41 = c00, c42 = c00, c43 = c00, c50 = c00, c51 = c00, c52 = c00, c53 = c00;
    const int8_t *wk = wb;
    int32_t px[6];
    for (int p = 0; p < 6; p++) px[p] = pix[p < rows ? p : rows - 1];
    for (int s = 0; s < g->S; s++) {
        const uint8_t *p0 = g->a + px[0] + g->seg[s], *p1 = g->a + px[1] + g->seg[s];
        const uint8_t *p2 = g->a + px[2] + g->seg[s], *p3 = g->a + px[3] + g->seg[s];
        const uint8_t *p4 = g->a + px[4] + g->seg[s], *p5 = g->a + px[5] + g->seg[s];
        for (int j = 0; j < g->L; j += 4, wk += 64) {
            __m512i w0 = _mm512_loadu_si512((const void *)wk), w1 = _mm512_loadu_si512((const void *)(wk + wstride));
            __m512i w2 = _mm512_loadu_si512((const void *)(wk + 2 * wstride));
            __m512i w3 = _mm512_loadu_si512((const void *)(wk + 3 * wstride));
#define T8_ROW(P, A0, A1, A2, A3) { __m512i b_ = _mm512_set1_epi32(tn_load4(P + j)); \
            A0 = _mm512_dpbusd_epi32(A0, b_, w0); A1 = _mm512_dpbusd_epi32(A1, b_, w1); \
            A2 = _mm512_dpbusd_epi32(A2, b_, w2); A3 = _mm512_dpbusd_epi32(A3, b_, w3); }
            T8_ROW(p0, c00, c01, c02, c03) T8_ROW(p1, c10, c11, c12, c13) T8_ROW(p2, c20, c21, c22, c23)
            T8_ROW(p3, c30, c31, c32, c33) T8_ROW(p4, c40, c41, c42, c43) T8_ROW(p5, c50, c51, c52, c53)
#undef T8_ROW
        }
    }
    int32_t out[6 * 64];
#define T8_OUT(R, A0, A1, A2, A3) { _mm512_storeu_si512((void *)(out + (R) * 64), A0); \
    _mm512_storeu_si512((void *)(out + (R) * 64 + 16), A1); _mm512_storeu_si512((void *)(out + (R) * 64 + 32), A2); \
    _mm512_storeu_si512((void *)(out + (R) * 64 + 48), A3); }
    T8_OUT(0, c00, c01, c02, c03) T8_OUT(1, c10, c11, c12, c13) T8_OUT(2, c20, c21, c22, c23)
    T8_OUT(3, c30, c31, c32, c33) T8_OUT(4, c40, c41, c42, c43) T8_OUT(5, c50, c51, c52, c53)
#undef T8_OUT
    for (int q = 0; q < 4; q++) epi_avx512(g, out + q * 16, 64, m, rows, (nb + q) * 16);
}

/* The 6 x 4 tile over k in [j0, j1) of segment s only, its sums kept in acc ([6][64] int32) between parts:
 * started from zero where first, through the epilogue where last. Its own copy of t8_tile_6x4's loop on purpose:
 * one function for both (segment and k ranges as arguments) left GCC short of registers, with loads from the stack
 * in the inner loop, and ResNet-20 ran 3-4% slower on AVX-512 (bench/results/ab_merged_6x4_xeon_avx512.json). */
static inline __attribute__((always_inline)) void t8_part_6x4(const tn_gemm_args *g, const int8_t *wb, size_t wstride,
                                                              int m, int nb, int rows, int s, int j0, int j1,
                                                              int32_t *acc, int first, int last) {
    /* named accumulators: GCC keeps an array of them in memory */
#define T8_INIT(i) (first ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)(acc + 16 * (i))))
    __m512i c00 = T8_INIT(0), c01 = T8_INIT(1), c02 = T8_INIT(2), c03 = T8_INIT(3), c10 = T8_INIT(4);
    __m512i c11 = T8_INIT(5), c12 = T8_INIT(6), c13 = T8_INIT(7), c20 = T8_INIT(8), c21 = T8_INIT(9);
    __m512i c22 = T8_INIT(10), c23 = T8_INIT(11), c30 = T8_INIT(12), c31 = T8_INIT(13), c32 = T8_INIT(14);
    __m512i c33 = T8_INIT(15), c40 = T8_INIT(16), c41 = T8_INIT(17), c42 = T8_INIT(18), c43 = T8_INIT(19);
    __m512i c50 = T8_INIT(20), c51 = T8_INIT(21), c52 = T8_INIT(22), c53 = T8_INIT(23);
#undef T8_INIT
    const int32_t *pix = g->pix + m;
    int r = rows - 1;
    const uint8_t *a = g->a + g->seg[s];
    const uint8_t *p0 = a + pix[0], *p1 = a + pix[1 < r ? 1 : r], *p2 = a + pix[2 < r ? 2 : r];
    const uint8_t *p3 = a + pix[3 < r ? 3 : r], *p4 = a + pix[4 < r ? 4 : r], *p5 = a + pix[5 < r ? 5 : r];
    const int8_t *wk = wb + ((size_t)s * g->L + j0) / 4 * 64;
    for (int j = j0; j < j1; j += 4, wk += 64) {
        __m512i w0 = _mm512_loadu_si512((const void *)wk), w1 = _mm512_loadu_si512((const void *)(wk + wstride));
        __m512i w2 = _mm512_loadu_si512((const void *)(wk + 2 * wstride));
        __m512i w3 = _mm512_loadu_si512((const void *)(wk + 3 * wstride));
#define T8_ROW(P, A0, A1, A2, A3) { __m512i b_ = _mm512_set1_epi32(tn_load4(P + j)); \
        A0 = _mm512_dpbusd_epi32(A0, b_, w0); A1 = _mm512_dpbusd_epi32(A1, b_, w1); \
        A2 = _mm512_dpbusd_epi32(A2, b_, w2); A3 = _mm512_dpbusd_epi32(A3, b_, w3); }
        T8_ROW(p0, c00, c01, c02, c03) T8_ROW(p1, c10, c11, c12, c13) T8_ROW(p2, c20, c21, c22, c23)
        T8_ROW(p3, c30, c31, c32, c33) T8_ROW(p4, c40, c41, c42, c43) T8_ROW(p5, c50, c51, c52, c53)
#undef T8_ROW
    }
#define T8_OUT(R, A0, A1, A2, A3) { _mm512_storeu_si512((void *)(acc + (R) * 64), A0); \
    _mm512_storeu_si512((void *)(acc + (R) * 64 + 16), A1); _mm512_storeu_si512((void *)(acc + (R) * 64 + 32), A2); \
    _mm512_storeu_si512((void *)(acc + (R) * 64 + 48), A3); }
    T8_OUT(0, c00, c01, c02, c03) T8_OUT(1, c10, c11, c12, c13) T8_OUT(2, c20, c21, c22, c23)
    T8_OUT(3, c30, c31, c32, c33) T8_OUT(4, c40, c41, c42, c43) T8_OUT(5, c50, c51, c52, c53)
#undef T8_OUT
    if (last)
        for (int q = 0; q < 4; q++) epi_avx512(g, acc + q * 16, 64, m, rows, (nb + q) * 16);
}

/* Deep layers (K > KB_MIN_K): the 6 x 4 tile walks K in parts of KB_J per segment, and a part's weights for the
 * 64 channels (16 KB) serve every tile of a chunk of KB_MC pixels before the next part, so they are read from L1,
 * where a tile walking all of K read the group's weights (590 KB on yolov2-tiny-voc's 13x13x1024 layer) from L2
 * for every 6 pixels. The chunk's sums (12 KB) stay in L1 between parts. */
#define KB_J 256
#define KB_MC 48
#define KB_MIN_K 1024
static void t8_group_kblocked(const tn_gemm_args *g, const int8_t *wb, size_t wstride, int m0, int m1, int nb) {
    int32_t sums[KB_MC * 64] __attribute__((aligned(64)));
    for (int mc = m0; mc < m1; mc += KB_MC) {
        int me = mc + KB_MC < m1 ? mc + KB_MC : m1;
        for (int s = 0; s < g->S; s++)
            for (int j0 = 0; j0 < g->L; j0 += KB_J) {
                int j1 = j0 + KB_J < g->L ? j0 + KB_J : g->L, first = s == 0 && j0 == 0;
                int last = s == g->S - 1 && j1 == g->L;
                for (int m = mc; m < me; m += 6)
                    t8_part_6x4(g, wb, wstride, m, nb, me - m < 6 ? me - m : 6, s, j0, j1, sums + (m - mc) * 64,
                                first, last);
            }
    }
}

/* 12 pixels x 32 channels (2 blocks): 24 accumulators, per step 2 weight loads and 12 broadcasts for 24
 * VPDPBUSD, where one block at a time needs 26 loads for them (layers of 32 channels, too shallow for AMX). */
static inline __attribute__((always_inline)) void t8_tile_12x2(const tn_gemm_args *g, const int8_t *wb, size_t wstride,
                                                               const int32_t *pix, int m, int nb, int rows, int q0) {
    __m512i c0[12], c1[12];
    for (int p = 0; p < 12; p++) c0[p] = c1[p] = _mm512_setzero_si512();
    const int8_t *wk = wb;
    int32_t px[12];                                  /* rows < 12: as the 6 x 4 tile */
    for (int p = 0; p < 12; p++) px[p] = pix[p < rows ? p : rows - 1];
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[12];
        for (int p = 0; p < 12; p++) ap[p] = g->a + px[p] + g->seg[s];
        for (int j = 0; j < g->L; j += 4, wk += 64) {
            __m512i w0 = _mm512_loadu_si512((const void *)wk), w1 = _mm512_loadu_si512((const void *)(wk + wstride));
            for (int p = 0; p < 12; p++) {
                __m512i b = _mm512_set1_epi32(tn_load4(ap[p] + j));
                c0[p] = _mm512_dpbusd_epi32(c0[p], b, w0);
                c1[p] = _mm512_dpbusd_epi32(c1[p], b, w1);
            }
        }
    }
    int32_t out[12 * 32];
    for (int p = 0; p < 12; p++) {
        _mm512_storeu_si512((void *)(out + p * 32), c0[p]);
        _mm512_storeu_si512((void *)(out + p * 32 + 16), c1[p]);
    }
    t8_epilogue(g, out, 32, m, rows, nb * 16, q0);
    t8_epilogue(g, out + 16, 32, m, rows, (nb + 1) * 16, q0);
}

#define T8_MR 12
static inline __attribute__((always_inline)) void t8_tile(const tn_gemm_args *g, const int8_t *wb, const int32_t *pix,
                                                          int m, int mr, int nb, int q0) {
    __m512i acc[T8_MR];
    for (int p = 0; p < mr; p++) acc[p] = _mm512_setzero_si512();
    const int8_t *wk = wb;
    for (int s = 0; s < g->S; s++) {
        const uint8_t *ap[T8_MR];
        for (int p = 0; p < mr; p++) ap[p] = g->a + pix[p] + g->seg[s];
        for (int j = 0; j < g->L; j += 4, wk += 64) {
            __m512i w = _mm512_loadu_si512((const void *)wk);
            for (int p = 0; p < mr; p++)
                acc[p] = _mm512_dpbusd_epi32(acc[p], _mm512_set1_epi32(tn_load4(ap[p] + j)), w);
        }
    }
    int32_t out[T8_MR * 16];
    for (int p = 0; p < mr; p++) _mm512_storeu_si512((void *)(out + p * 16), acc[p]);
    t8_epilogue(g, out, 16, m, mr, nb * 16, q0);
}

void tn_gemm_t8_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    size_t K4 = (size_t)g->S * g->L / 4, wstride = K4 * 64;
    int nb = nb0;
    for (; nb + 4 <= nb1; nb += 4) {          /* groups of 64 channels: the weights stay in L2 across pixels */
        const int8_t *wb = (const int8_t *)g->w + nb * wstride;
        if ((size_t)g->S * g->L > KB_MIN_K) {
            t8_group_kblocked(g, wb, wstride, m0, m1, nb);
            continue;
        }
        int m = m0;
        for (; m + 6 <= m1; m += 6) t8_tile_6x4(g, wb, wstride, g->pix + m, m, nb, 6);
        if (m < m1) t8_tile_6x4(g, wb, wstride, g->pix + m, m, nb, m1 - m);
    }
    for (; nb + 2 <= nb1; nb += 2) {
        const int8_t *wb = (const int8_t *)g->w + nb * wstride;
        int m = m0;
        for (; m + 12 <= m1; m += 12) t8_tile_12x2(g, wb, wstride, g->pix + m, m, nb, 12, -1);
        if (m < m1) t8_tile_12x2(g, wb, wstride, g->pix + m, m, nb, m1 - m, -1);
    }
    for (; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)g->w + nb * wstride;
        int m = m0;
        for (; m + T8_MR <= m1; m += T8_MR) t8_tile(g, wb, g->pix + m, m, T8_MR, nb, -1);
        for (; m + 4 <= m1; m += 4) t8_tile(g, wb, g->pix + m, m, 4, nb, -1);
        for (; m < m1; m++) t8_tile(g, wb, g->pix + m, m, 1, nb, -1);
    }
}

/* tn_w2_as_int8 with AVX-512BW (no VBMI: VNNI CPUs before Ice Lake lack it), 64 weights a step: the row's 16
 * bytes in every lane, each channel's byte copied to its four bytes (VPSHUFB by TN_W2_SLOT), each byte shifted to
 * its code (VPSRLVW: a word's two bytes by 0 and 2, or 4 and 6, kept from two shifts by a byte blend), masked and
 * mapped to 0, 1, 0, -1 (VPSHUFB). */
void tn_w2_as_int8_avx512(const tn_gemm_args *g, int nb0, int nb1, int8_t *buf, tn_gemm_args *e) {
    int K = g->S * g->L, K4 = K / 4, Kp4 = (K + 63) / 64 * 16;
    size_t block = (size_t)K * 16;
    int8_t slot[64], lut[64];
    for (int i = 0; i < 64; i++) {
        slot[i] = (int8_t)TN_W2_SLOT((i & 15) / 4 + 4 * (i / 16));
        lut[i] = (int8_t)((i & 3) == 1 ? 1 : (i & 3) == 3 ? -1 : 0);
    }
    const __m512i pick = _mm512_loadu_si512((const void *)slot), map = _mm512_loadu_si512((const void *)lut);
    const __m512i shift_even = _mm512_set1_epi32(4 << 16), shift_odd = _mm512_set1_epi32(6 << 16 | 2);
    const __m512i three = _mm512_set1_epi8(3);
    for (int nb = nb0; nb < nb1; nb++) {
        const uint8_t *src = (const uint8_t *)g->w + (size_t)nb * Kp4 * 16;
        int8_t *out = buf + (size_t)(nb - nb0) * block;
        for (int r = 0; r < K4; r++) {
            __m512i x = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(src + r * 16))),
                                            pick);
            __m512i codes = _mm512_mask_blend_epi8(0xAAAAAAAAAAAAAAAAull, _mm512_srlv_epi16(x, shift_even),
                                                   _mm512_srlv_epi16(x, shift_odd));
            _mm512_storeu_si512((void *)(out + (size_t)r * 64),
                                _mm512_shuffle_epi8(map, _mm512_and_si512(codes, three)));
        }
    }
    memset(buf + (size_t)(nb1 - nb0) * block, 0, 1024);
    *e = *g;
    e->w = (const void *)((uintptr_t)buf - (uintptr_t)nb0 * block);
}

/* The int8 kernel on 2-bit weights: blocks expanded into this thread's buffer (kept: the pool's threads live as
 * long as the process). A call's blocks that fit in W2_KEEP bytes are expanded once and kept for its next tasks
 * (a pooled layer's GEMM runs two conv rows at a time); deeper ones a group of 4 (the kernel's 64 channels) at a
 * time, which stays in L2 while every pixel reads it (yolov2-tiny-voc's 13x13x1024 layer: 590 KB). */
#define W2_KEEP (512 << 10)
static __thread int8_t *w2buf;
static __thread size_t w2cap;
static __thread unsigned long w2_gen;              /* what w2buf holds: the call (gen), weights and blocks */
static __thread const void *w2_w;
static __thread int w2_nb0, w2_nb1;

static int w2_room(const tn_gemm_args *g, int blocks) {
    if (w2cap >= TN_W2_INT8_BYTES(g, blocks)) return 0;
    free(w2buf);
    w2cap = TN_W2_INT8_BYTES(g, blocks);
    w2buf = aligned_alloc(64, (w2cap + 63) & ~(size_t)63);   /* the kernels read its 64-byte rows */
    w2_gen = 0;
    if (!w2buf) w2cap = 0;
    return w2buf ? 0 : -1;
}

/* *e = *g reading blocks nb0..nb1 as int8 from the kept buffer (expanded unless this thread already did for the
 * call); -1 where they do not fit W2_KEEP or there is no buffer */
static int w2_kept(const tn_gemm_args *g, int nb0, int nb1, tn_gemm_args *e) {
    if ((size_t)(nb1 - nb0) * g->S * g->L * 16 > W2_KEEP || w2_room(g, nb1 - nb0)) return -1;
    if (!(g->gen && g->gen == w2_gen && g->w == w2_w && nb0 == w2_nb0 && nb1 == w2_nb1)) {
        tn_w2_as_int8_avx512(g, nb0, nb1, w2buf, e);
        w2_gen = g->gen; w2_w = g->w; w2_nb0 = nb0; w2_nb1 = nb1;
    }
    *e = *g;
    e->w = (const void *)((uintptr_t)w2buf - (uintptr_t)nb0 * g->S * g->L * 16);
    return 0;
}

int tn_gemm_t8w2_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    tn_gemm_args e;
    if (w2_kept(g, nb0, nb1, &e) == 0) {
        tn_gemm_t8_avx512(&e, m0, m1, nb0, nb1);
        return 0;
    }
    if (w2_room(g, 4)) return -1;
    w2_gen = 0;
    for (int nb = nb0; nb < nb1; nb += 4) {
        int n1 = nb + 4 < nb1 ? nb + 4 : nb1;
        tn_w2_as_int8_avx512(g, nb, n1, w2buf, &e);
        tn_gemm_t8_avx512(&e, m0, m1, nb, n1);
    }
    return 0;
}

/* The fused 2x2 max pool (g->pool_wo: [m0, m1) is two conv rows of Wo pixels, out[q·ldo + n] the pooled row):
 * the tiles read the pixels window by window (three windows of four a 12-pixel tile), and the epilogue pools
 * them, so the two conv rows are never written out and read back as the unfused path does. 2-bit weights where
 * the call's blocks fit the kept buffer. -1 without touching anything for a residual, odd rows or no buffer. */
static __thread int32_t *windows;
static __thread size_t windows_cap;
int tn_gemm_t8pool_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1, int w2) {
    int Wo = g->pool_wo, Q = Wo / 2;
    if (Wo < 2 || m1 - m0 != 2 * Wo || g->res || (size_t)g->S * g->L > KB_MIN_K) return -1;   /* deep: K parts */
    tn_gemm_args e = *g;
    if (w2 && w2_kept(g, nb0, nb1, &e)) return -1;
    if (windows_cap < (size_t)Q * 4) {
        free(windows);
        windows = malloc(sizeof(int32_t) * 4 * (size_t)Q);
        windows_cap = windows ? (size_t)Q * 4 : 0;
        if (!windows) return -1;
    }
    for (int q = 0; q < Q; q++) {                     /* pool_row's order: the first row's two, the second's */
        const int32_t *p0 = g->pix + m0 + 2 * q, *p1 = p0 + Wo;
        windows[4 * q] = p0[0]; windows[4 * q + 1] = p0[1]; windows[4 * q + 2] = p1[0]; windows[4 * q + 3] = p1[1];
    }
    size_t wstride = (size_t)g->S * g->L / 4 * 64;
    int nb = nb0;
    for (; nb + 4 <= nb1; nb += 4) {                  /* 64 channels: two 6 x 4 tiles give three windows */
        const int8_t *wb = (const int8_t *)e.w + nb * wstride;
        float conv[12 * 64];
        for (int q = 0; q < Q; q += 3) {
            int rows = 4 * (Q - q < 3 ? Q - q : 3);
            tn_gemm_args f;
            conv_rows(&e, conv, 64, 12, nb * 16, &f);
            t8_tile_6x4(&f, wb, wstride, windows + 4 * q, 0, nb, rows < 6 ? rows : 6);
            if (rows > 6) t8_tile_6x4(&f, wb, wstride, windows + 4 * q + 6, 6, nb, rows - 6);
            pool_windows(&e, conv, 64, rows / 4, nb * 16, 4, q);
        }
    }
    for (; nb + 2 <= nb1; nb += 2) {
        const int8_t *wb = (const int8_t *)e.w + nb * wstride;
        for (int q = 0; q < Q; q += 3)
            t8_tile_12x2(&e, wb, wstride, windows + 4 * q, 0, nb, 4 * (Q - q < 3 ? Q - q : 3), q);
    }
    for (; nb < nb1; nb++) {
        const int8_t *wb = (const int8_t *)e.w + nb * wstride;
        int q = 0;
        for (; q + 3 <= Q; q += 3) t8_tile(&e, wb, windows + 4 * q, 0, 12, nb, q);
        for (; q < Q; q++) t8_tile(&e, wb, windows + 4 * q, 0, 4, nb, q);
    }
    return 0;
}

/* 16 values a step, the tail as the serial kernel. The serial kernel's arithmetic in fewer steps: rounding half to even by the conversion itself (the serial
 * kernel's 1.5·2^23 trick gives the same integers for |v| <= 512), the zero point added and the [0, 255] clamp
 * done on integers (a max with 0, then the unsigned saturating narrowing); NaN becomes -512 as there, so 0. */
void tn_quant_u8_avx512(const float *x, uint8_t *o, int n, float inv, int zp) {
    const __m512 vinv = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-512.f), hi = _mm512_set1_ps(512.f);
    const __m512i z = _mm512_set1_epi32(zp), zero = _mm512_setzero_si512();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vinv), lo), hi);
        __m512i q = _mm512_max_epi32(_mm512_add_epi32(tn_cvtps_epi32_512(v), z), zero);
        _mm_storeu_si128((__m128i *)(o + i), tn_cvtusepi32_epi8_512(q));
    }
    tn_quant_u8_serial(x + i, o + i, n - i, inv, zp);
}

/* 16 codes a step: ones, blended to 2 where t >= .5 and to 0 where t < -.5; the tail as the serial kernel */
void tn_tact_codes_avx512(const float *x, const float *a, const float *b, size_t n, uint8_t *o) {
    const __m512 hi = _mm512_set1_ps(0.5f), lo = _mm512_set1_ps(-0.5f);
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi8(1), two = _mm_set1_epi8(2);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(x + i)), _mm512_loadu_ps(b + i));
        __m128i u = _mm_mask_blend_epi8(_mm512_cmp_ps_mask(v, hi, _CMP_GE_OQ), one, two);
        _mm_storeu_si128((__m128i *)(o + i), _mm_mask_blend_epi8(_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), u, zero));
    }
    tn_tact_codes_serial(x + i, a + i, b + i, n - i, o + i);
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

/* Two blocks (16 channels) at once: the activation words are broadcast once for both, and the sums leave as
 * one zmm of 16 int32 for the 16-wide epilogue, which is most of the time where K is a few words (C = 16, 32). */
static inline __attribute__((always_inline)) void tt_tile2(const tn_gemm_args *g, const uint64_t *wb, int m, int mr,
                                                           int nb) {
    int KW = g->KW;
    const uint64_t *wb1 = wb + (size_t)KW * 16;
    const uint64_t *A[TT_MR];
    __m512i acc0[TT_MR], acc1[TT_MR];
    for (int p = 0; p < mr; p++) {
        A[p] = (const uint64_t *)g->a + (size_t)(m + p) * 2 * KW;
        acc0[p] = acc1[p] = _mm512_setzero_si512();
    }
    for (int k = 0; k < KW; k++) {
        __m512i wn0 = _mm512_loadu_si512((const void *)(wb + (size_t)k * 16));
        __m512i ws0 = _mm512_loadu_si512((const void *)(wb + (size_t)k * 16 + 8));
        __m512i wn1 = _mm512_loadu_si512((const void *)(wb1 + (size_t)k * 16));
        __m512i ws1 = _mm512_loadu_si512((const void *)(wb1 + (size_t)k * 16 + 8));
        for (int p = 0; p < mr; p++) {
            __m512i an = _mm512_set1_epi64(tn_load8(A[p] + k)), as = _mm512_set1_epi64(tn_load8(A[p] + KW + k));
            __m512i both0 = _mm512_and_si512(an, wn0), both1 = _mm512_and_si512(an, wn1);
            __m512i neg0 = _mm512_ternarylogic_epi64(both0, as, ws0, 0x60);
            __m512i neg1 = _mm512_ternarylogic_epi64(both1, as, ws1, 0x60);
            acc0[p] = _mm512_add_epi64(acc0[p], _mm512_sub_epi64(_mm512_popcnt_epi64(both0),
                                                                 _mm512_slli_epi64(_mm512_popcnt_epi64(neg0), 1)));
            acc1[p] = _mm512_add_epi64(acc1[p], _mm512_sub_epi64(_mm512_popcnt_epi64(both1),
                                                                 _mm512_slli_epi64(_mm512_popcnt_epi64(neg1), 1)));
        }
    }
    int32_t out[TT_MR * 16];
    for (int p = 0; p < mr; p++) {
        __m256i lo = _mm512_cvtepi64_epi32(acc0[p]), hi = _mm512_cvtepi64_epi32(acc1[p]);
        _mm512_storeu_si512((void *)(out + p * 16), _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    epi_avx512(g, out, 16, m, mr, nb * 8);
}

void tn_gemm_tt_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    int nb = nb0;
    for (; nb + 2 <= nb1; nb += 2) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * g->KW * 16;
        int m = m0;
        for (; m + TT_MR <= m1; m += TT_MR) tt_tile2(g, wb, m, TT_MR, nb);
        for (; m < m1; m++) tt_tile2(g, wb, m, 1, nb);
    }
    for (; nb < nb1; nb++) {
        const uint64_t *wb = (const uint64_t *)g->w + (size_t)nb * g->KW * 16;
        int m = m0;
        for (; m + TT_MR <= m1; m += TT_MR) tt_tile(g, wb, m, TT_MR, nb);
        for (; m < m1; m++) tt_tile(g, wb, m, 1, nb);
    }
}
#endif
