/* AMX kernel for the int8 path (Sapphire Rapids and later): TDPBUSD multiplies a 16 x 64 u8 tile of
 * activations by a 64 x 16 s8 tile of weights into 16 x 16 int32 sums, 16K multiply-adds an instruction
 * where VPDPBUSD does 64. Layers with short kernel rows read their tiles straight from the padded image
 * (amx_direct, below). For the others the weights need no new layout: a 16-channel block is packed
 * [K/4][16][4], which is exactly the B tile's rows. The activations are gathered per 32 pixels into a
 * contiguous [32][Kp] buffer (the kernel's taps laid side by side, K zero-padded to a multiple of 64), reused
 * for every channel block.
 * The last K chunk's B tile may read up to 15 rows (960 bytes) past a block: into the next block, or into the
 * 1 KiB of zeros every t8 weight buffer carries at its end (plan.py, checked in ops.c); those rows meet the
 * zero padding of the activations, so they add nothing. Sums are exact integers, so the results are
 * bit-identical to the serial kernel's.
 * Weights kept at 2 bits (tn.h) are expanded a 64-deep chunk at a time into a per-thread buffer (a channel
 * pair's chunks of one K block) while the first pixel block computes, and the other pixel blocks read them from
 * there: three vector instructions per 64 weights, once per K block and pair, beside the tiles, and a quarter of
 * the weight bytes read from memory (yolov2-tiny-voc's 13x13x1024 layers stream 14 MB of int8 weights a run). */
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(TN_SIMDE)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,avx2,fma,popcnt,amx-tile,amx-int8")
#include <float.h>
#include <stdlib.h>
#include "simd_x86.h"
#include "tn_epilogue.h"
#include "epi_avx512.h"

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tn_tilecfg;

/* Tiles (the intrinsics take their numbers as literals): 0-3 sums, pixels 0-15 / 16-31 x blocks nb / nb+1
 * (0 = 0-15 x nb, 1 = 0-15 x nb+1, 2 = 16-31 x nb, 3 = 16-31 x nb+1); 4-5 activations (pixels 0-15, 16-31);
 * 6-7 weights (blocks nb, nb+1). */

/* each thread's buffers (gathered pixels, partial sums), grown as needed and kept: the pool's threads live as
 * long as the process */
static __thread uint8_t *stage;
static __thread size_t stage_cap;
static __thread int32_t *partial;
static __thread size_t partial_cap;
static __thread int8_t *wbuf;                   /* 2-bit weights: two blocks' chunks of one K block, expanded */
static __thread size_t wbuf_cap;
static __thread int8_t *tail;                   /* direct tiles, 2-bit weights: a pair's blocks as int8 */
static __thread size_t tail_cap;

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    free(p);
    p = aligned_alloc(64, (need + 63) & ~(size_t)63);
    *cap = p ? need : 0;
    return p;
}

/* what stage holds: the conv call (gen), image and pixels it was gathered for. A call splits its channels into
 * several tasks over the same pixels (ops.c), and a thread running two of them gathers once (yolov2-tiny's
 * 13x13 layers: 9 MB of copies a run on one thread, 4 tasks each, before). */
static __thread unsigned long stage_gen;
static __thread const uint8_t *stage_a;
static __thread int stage_m0, stage_rows;

static int gather(const tn_gemm_args *g, int m0, int rows, int Mp, int K, int Kp) {
    if (g->gen && g->gen == stage_gen && g->a == stage_a && m0 == stage_m0 && rows == stage_rows) return 0;
    stage_gen = 0;
    stage = grow(stage, &stage_cap, (size_t)Mp * Kp);
    if (!stage) return -1;
    for (int r = 0; r < Mp; r++) {
        uint8_t *dst = stage + (size_t)r * Kp;
        if (r >= rows) { memset(dst, 0, (size_t)Kp); continue; }
        for (int s = 0; s < g->S; s++) memcpy(dst + (size_t)s * g->L, g->a + g->pix[m0 + r] + g->seg[s], (size_t)g->L);
        memset(dst + K, 0, (size_t)(Kp - K));
    }
    stage_gen = g->gen; stage_a = g->a; stage_m0 = m0; stage_rows = rows;
    return 0;
}

/* Rows of a 2-bit block (16 bytes each, tn.h; 16 rows: a 64-deep chunk) into B tile rows of 64 int8: row r's
 * 16 bytes broadcast to the four 128-bit lanes put channels 4l..4l+3's codes in lane l's two qwords (the slot
 * order), the multishift moves code j of each channel into byte j of its dword (low two bits; the rest are the
 * next codes), and the permute maps those 6 bits through a table that reads only the low two. */
static inline void expand_rows(const uint8_t *src, int8_t *dst, int rows) {
    static const uint8_t shifts[64] __attribute__((aligned(64))) = {
        0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 16, 18, 20, 22,
        24, 26, 28, 30, 32, 34, 36, 38, 40, 42, 44, 46, 32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60,
        62, 48, 50, 52, 54, 56, 58, 60, 62};
    static const int8_t value[64] __attribute__((aligned(64))) = {
        0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1,
        0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1, 0, 1, 0, -1};
    __m512i ctl = _mm512_load_si512(shifts), tab = _mm512_load_si512(value);
    for (int r = 0; r < rows; r++) {
        __m512i x = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(src + 16 * r)));
        _mm512_store_si512(dst + 64 * r, _mm512_permutexvar_epi8(_mm512_multishift_epi64_epi8(ctl, x), tab));
    }
}

void tn_gemm_t8_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);

/* The gathered path, below this depth (TN_AMX_MIN_K, tn.h): the gather costs more than the tiles save
 * (yolov2-tiny's first layers, K = 36 to 144, ran as fast or faster with VPDPBUSD straight from the padded image;
 * they now take the direct tiles below, which need no gather). */
#define AMX_MIN_K TN_AMX_MIN_K

/* K is walked in blocks of at most KBLOCK_BYTES of gathered pixels (Mp rows x kb·64): a block stays in L2
 * while every channel pair passes over it, where the whole gathered input of a deep layer would not
 * (yolov2-tiny's 13x13x1024 layer: 1.5 MB of pixels, read once per pair). Between blocks the sums wait in
 * ``partial`` as int32. */
#define KBLOCK_BYTES (384 << 10)

/* Direct tiles, no gather, for convs whose kernel rows are short (S segments of L bytes, at most DIRECT_CHUNKS
 * 64-byte chunks in all: every layer of ResNet-20, yolov2-tiny's first five). A tile's 16 rows are 16
 * consecutive output pixels of one output row, whose inputs lie a fixed stride apart in the padded image, so
 * one TILELOADD with that stride reads a segment's chunk for all of them: 64 bytes from each, the bytes past
 * the segment (the next pixels' inputs) meeting B rows that are zero. B is the weights laid out again per
 * channel pair, each chunk its own 16 rows with zeros past the segment (int8 copied, 2-bit expanded). Pixels
 * past the row's end fill a tile's spare rows and are not stored. The reads past the last pixel land in the
 * input's slack (plan.py); a tile whose reads would pass a_len anyway goes to the AVX-512 kernel. */
#define DIRECT_CHUNKS 32

/* consecutive pixels from m (at most 16, below m1) whose inputs lie *d bytes apart (d >= 4) */
static inline int run_of(const int32_t *pix, int m, int m1, int *d) {
    int v = 1;
    *d = m + 1 < m1 ? pix[m + 1] - pix[m] : 4;
    while (v < 16 && m + v < m1 && pix[m + v] - pix[m + v - 1] == *d) v++;
    if (v == 1 || *d < 4) *d = 4;       /* one pixel: the spare rows read just past it */
    return v;
}

static void direct_weights(const tn_gemm_args *g, int nb, int w2, int8_t *dst) {
    int S = g->S, L = g->L, nch = (L + 63) / 64, K = S * L;
    size_t wstride = w2 ? (size_t)((K + 63) & ~63) * 4 : (size_t)K / 4 * 64;
    const int8_t *w = (const int8_t *)g->w + nb * wstride;
    for (int s = 0; s < S; s++)
        for (int c = 0; c < nch; c++, dst += 1024) {
            int row0 = (s * L + 64 * c) / 4, rows = (L - 64 * c) / 4 < 16 ? (L - 64 * c) / 4 : 16;
            if (w2) expand_rows((const uint8_t *)w + (size_t)row0 * 16, dst, rows);
            else memcpy(dst, w + (size_t)row0 * 64, (size_t)rows * 64);
            memset(dst + rows * 64, 0, (size_t)(16 - rows) * 64);
        }
}

/* The direct tiles' shapes: a segment shorter than 64 bytes (one chunk) is read that long (rounded to 4), and its
 * B tiles that deep: the 16 rows of an A tile overlap (4 to 48 bytes apart), and 64-byte rows cross cache lines
 * where short ones mostly do not. */
static void direct_config(tn_tilecfg *cfg, int L) {
    int k = L < 64 ? (L + 3) & ~3 : 64;
    memset(cfg, 0, sizeof *cfg);
    cfg->palette = 1;
    for (int t = 0; t < 8; t++) { cfg->rows[t] = 16; cfg->colsb[t] = 64; }
    cfg->colsb[4] = cfg->colsb[5] = (uint16_t)k;
    cfg->rows[6] = cfg->rows[7] = (uint8_t)(k / 4);
}

/* One step of the direct tiles: 16 pixels from a0 (stride d0) and, unless a1 is NULL, 16 from a1 (d1), times one
 * or two channel blocks' B chunks (b0, b1); sums to acc [32][32]: rows 0-15 a0's, 16-31 a1's, columns 0-15 b0's */
static inline void direct_tiles(const tn_gemm_args *g, const uint8_t *a0, int d0, const uint8_t *a1, int d1, int two,
                                const int8_t *b0, const int8_t *b1, int32_t *acc) {
    int nch = (g->L + 63) / 64;
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (int s = 0, k = 0; s < g->S; s++)
        for (int c = 0; c < nch; c++, k++) {
            size_t off = (size_t)g->seg[s] + 64 * (size_t)c;
            _tile_loadd(4, a0 + off, d0);
            _tile_loadd(6, b0 + (size_t)k * 1024, 64);
            _tile_dpbusd(0, 4, 6);
            if (two) { _tile_loadd(7, b1 + (size_t)k * 1024, 64); _tile_dpbusd(1, 4, 7); }
            if (a1) {
                _tile_loadd(5, a1 + off, d1);
                _tile_dpbusd(2, 5, 6);
                if (two) _tile_dpbusd(3, 5, 7);
            }
        }
    _tile_stored(0, acc, 128);
    _tile_stored(1, acc + 16, 128);
    _tile_stored(2, acc + 16 * 32, 128);
    _tile_stored(3, acc + 16 * 32 + 16, 128);
}

static inline __attribute__((always_inline)) int amx_direct(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1,
                                                            const int w2) {
    int S = g->S, nch = (g->L + 63) / 64, nk = S * nch;
    /* the farthest byte a tile at pixel m reads: pix[m] + reach + 15·d */
    size_t reach = (size_t)g->seg[S - 1] + 64 * (size_t)nch;
    wbuf = grow(wbuf, &wbuf_cap, (size_t)nk * 2048);
    if (w2) tail = grow(tail, &tail_cap, TN_W2_INT8_BYTES(g, 2));     /* a pair as int8, for the AVX-512 tail */
    if (!wbuf || (w2 && !tail)) return -1;
    tn_tilecfg cfg;
    direct_config(&cfg, g->L);
    _tile_loadconfig(&cfg);
    int32_t acc[32 * 32];
    for (int nb = nb0; nb < nb1; nb += 2) {
        int two = nb + 1 < nb1;
        int8_t *b0 = wbuf, *b1 = wbuf + (size_t)nk * 1024;
        direct_weights(g, nb, w2, b0);
        if (two) direct_weights(g, nb + 1, w2, b1);
        for (int m = m0; m < m1;) {
            int d0, d1 = 64, v0 = run_of(g->pix, m, m1, &d0), v1 = m + v0 < m1 ? run_of(g->pix, m + v0, m1, &d1) : 0;
            if ((size_t)g->pix[m] + reach + 15 * (size_t)d0 > g->a_len ||
                (v1 && (size_t)g->pix[m + v0] + reach + 15 * (size_t)d1 > g->a_len)) {
                int nb2 = two ? nb + 2 : nb + 1;
                tn_gemm_args e = *g;
                if (w2) tn_w2_as_int8_avx512(g, nb, nb2, tail, &e);         /* the int8 kernel reads int8 blocks */
                _tile_release();
                tn_gemm_t8_avx512(&e, m, m1, nb, nb2);
                _tile_loadconfig(&cfg);
                break;
            }
            direct_tiles(g, g->a + g->pix[m], d0, v1 ? g->a + g->pix[m + v0] : NULL, d1, two, b0, b1, acc);
            epi_avx512(g, acc, 32, m, v0, nb * 16);
            if (two) epi_avx512(g, acc + 16, 32, m, v0, (nb + 1) * 16);
            if (v1) {
                epi_avx512(g, acc + 16 * 32, 32, m + v0, v1, nb * 16);
                if (two) epi_avx512(g, acc + 16 * 32 + 16, 32, m + v0, v1, (nb + 1) * 16);
            }
            m += v0 + v1;
        }
    }
    _tile_release();
    return 0;
}

/* The direct tiles with the fused 2x2 max pool (g->pool_wo: [m0, m1) is two conv rows of Wo pixels): a0 the
 * first row's 16 pixels at x, a1 the second row's; after the epilogue into a small buffer (L1, where the
 * unfused path writes both whole rows out and reads them back), the four of each window are maxed in
 * pool_row's order (v = x > v ? x : v, from -FLT_MAX: MAXPS(x, v)) into out's pooled row. -1 without touching
 * anything where a row is not evenly spaced or a tile would read past a_len (the caller pools unfused). */
static inline __attribute__((always_inline)) int amx_direct_pooled(const tn_gemm_args *g, int m0, int m1, int nb0,
                                                                   int nb1, const int w2) {
    int S = g->S, nch = (g->L + 63) / 64, nk = S * nch, Wo = g->pool_wo, N = g->N;
    if (Wo < 2 || Wo % 2 || m1 - m0 != 2 * Wo) return -1;
    size_t reach = (size_t)g->seg[S - 1] + 64 * (size_t)nch;
    for (int x = 0; x < Wo; x += 16)
        for (int row = 0; row < 2; row++) {
            int m = m0 + row * Wo + x, d, v = run_of(g->pix, m, m0 + row * Wo + Wo, &d);
            if (v != (Wo - x < 16 ? Wo - x : 16) || (size_t)g->pix[m] + reach + 15 * (size_t)d > g->a_len) return -1;
        }
    wbuf = grow(wbuf, &wbuf_cap, (size_t)nk * 2048);
    if (!wbuf) return -1;
    tn_tilecfg cfg;
    direct_config(&cfg, g->L);
    _tile_loadconfig(&cfg);
    int32_t acc[32 * 32];
    float conv[32 * 32];                                /* [two rows x 16 pixels][two blocks x 16] */
    tn_gemm_args e = *g;                                /* the epilogue into conv */
    e.ldo = 32;
    for (int nb = nb0; nb < nb1; nb += 2) {
        int two = nb + 1 < nb1;
        int8_t *b0 = wbuf, *b1 = wbuf + (size_t)nk * 1024;
        direct_weights(g, nb, w2, b0);
        if (two) direct_weights(g, nb + 1, w2, b1);
        e.out = (float *)((uintptr_t)conv - (uintptr_t)nb * 16 * sizeof(float));   /* column n at n - 16·nb */
        for (int x = 0; x < Wo; x += 16) {
            int v = Wo - x < 16 ? Wo - x : 16, d0, d1, ma = m0 + x, mb = m0 + Wo + x;
            run_of(g->pix, ma, m0 + Wo, &d0);
            run_of(g->pix, mb, m1, &d1);
            direct_tiles(g, g->a + g->pix[ma], d0, g->a + g->pix[mb], d1, two, b0, b1, acc);
            for (int blk = 0; blk <= two; blk++) {
                int n0 = (nb + blk) * 16, cnt = N - n0 < 16 ? N - n0 : 16, in_res;
                if (epi_avx512_fits(g, n0, &in_res)) {     /* straight into conv: reading e's fields stalled */
                    epi_avx512_rows(g, acc + 16 * blk, 32, ma, v, n0, in_res, conv + 16 * blk, 32);
                    epi_avx512_rows(g, acc + 16 * 32 + 16 * blk, 32, mb, v, n0, in_res, conv + 16 * 32 + 16 * blk, 32);
                } else {
                    e.m_base = ma;
                    epi_avx512(&e, acc + 16 * blk, 32, ma, v, n0);
                    e.m_base = mb - 16;
                    epi_avx512(&e, acc + 16 * 32 + 16 * blk, 32, mb, v, n0);
                }
                __mmask16 keep = (__mmask16)((1u << cnt) - 1);
                for (int px = 0; px < v / 2; px++) {
                    const float *c0 = conv + (size_t)(2 * px) * 32 + 16 * blk, *c1 = c0 + 16 * 32;
                    __m512 w = _mm512_set1_ps(-FLT_MAX);
                    w = _mm512_max_ps(_mm512_maskz_loadu_ps(keep, c0), w);
                    w = _mm512_max_ps(_mm512_maskz_loadu_ps(keep, c0 + 32), w);
                    w = _mm512_max_ps(_mm512_maskz_loadu_ps(keep, c1), w);
                    w = _mm512_max_ps(_mm512_maskz_loadu_ps(keep, c1 + 32), w);
                    _mm512_mask_storeu_ps(g->out + (size_t)(x / 2 + px) * g->ldo + n0, keep, w);
                }
            }
        }
    }
    _tile_release();
    return 0;
}

int tn_gemm_t8pool_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1, int w2) {
    if (!g->a_len || g->S * ((g->L + 63) / 64) > DIRECT_CHUNKS) return -1;
    return w2 ? amx_direct_pooled(g, m0, m1, nb0, nb1, 1) : amx_direct_pooled(g, m0, m1, nb0, nb1, 0);
}

/* -1 (nothing done) where the layer is too shallow or a buffer cannot be had: the caller runs another kernel */
static inline __attribute__((always_inline)) int amx_gemm(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1,
                                                          const int w2) {
    int K = g->S * g->L, Kp = (K + 63) & ~63, nk = Kp / 64, rows = m1 - m0, Mp = (rows + 31) & ~31;
    if (g->a_len && g->S * ((g->L + 63) / 64) <= DIRECT_CHUNKS) return amx_direct(g, m0, m1, nb0, nb1, w2);
    if (K < AMX_MIN_K || gather(g, m0, rows, Mp, K, Kp) < 0) return -1;
    int kb = KBLOCK_BYTES / (Mp * 64);
    kb = kb < 4 ? 4 : kb > nk ? nk : kb;
    int ldp = ((nb1 - nb0 + 1) & ~1) * 16;              /* partial sums: [Mp][ldp] int32, whole pairs */
    if (kb < nk) {
        partial = grow(partial, &partial_cap, (size_t)Mp * ldp * 4);
        if (!partial) return -1;
    }
    if (w2) {
        wbuf = grow(wbuf, &wbuf_cap, (size_t)kb * 2048);
        if (!wbuf) return -1;
    }
    /* bytes of one 16-channel block: int8 [K/4][16][4], or 2-bit [Kp/4][16] */
    size_t wstride = w2 ? (size_t)Kp * 4 : (size_t)K / 4 * 64;
    tn_tilecfg cfg = {0};
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
    _tile_loadconfig(&cfg);
    int32_t acc[32 * 32];
    for (int k0 = 0; k0 < nk; k0 += kb) {
        int k1 = k0 + kb < nk ? k0 + kb : nk, last = k1 == nk;
        /* channel pairs outside, pixels inside: a pair's weights for this K block stay in L1/L2 while every
         * pixel block passes */
        for (int nb = nb0; nb < nb1; nb += 2) {
            int two = nb + 1 < nb1;
            const int8_t *w0 = (const int8_t *)g->w + nb * wstride, *w1 = two ? w0 + wstride : w0;
            /* chunk kc's B tiles at b0 / b1 + (kc - k0)·1 KiB */
            const int8_t *b0 = w2 ? wbuf : w0 + (size_t)k0 * 1024, *b1 = w2 ? (two ? wbuf + kb * 1024 : wbuf)
                                                                             : w1 + (size_t)k0 * 1024;
            for (int mb = 0; mb < rows; mb += 32) {
                const uint8_t *a0 = stage + (size_t)mb * Kp, *a1 = a0 + (size_t)16 * Kp;
                int32_t *p0 = partial + (size_t)mb * ldp + (nb - nb0) * 16, *p1 = p0 + (size_t)16 * ldp;
                if (k0 == 0) {
                    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                } else {
                    _tile_loadd(0, p0, ldp * 4);
                    _tile_loadd(2, p1, ldp * 4);
                    if (two) { _tile_loadd(1, p0 + 16, ldp * 4); _tile_loadd(3, p1 + 16, ldp * 4); }
                    else { _tile_zero(1); _tile_zero(3); }         /* an odd last block: w1 = w0, unused */
                }
                for (int kc = k0; kc < k1; kc++) {
                    if (w2 && mb == 0) {
                        expand_rows((const uint8_t *)w0 + (size_t)kc * 256, wbuf + (kc - k0) * 1024, 16);
                        if (two) expand_rows((const uint8_t *)w1 + (size_t)kc * 256, wbuf + (kb + kc - k0) * 1024, 16);
                    }
                    _tile_loadd(4, a0 + kc * 64, Kp);
                    _tile_loadd(5, a1 + kc * 64, Kp);
                    _tile_loadd(6, b0 + (size_t)(kc - k0) * 1024, 64);
                    _tile_loadd(7, b1 + (size_t)(kc - k0) * 1024, 64);
                    _tile_dpbusd(0, 4, 6);
                    _tile_dpbusd(1, 4, 7);
                    _tile_dpbusd(2, 5, 6);
                    _tile_dpbusd(3, 5, 7);
                }
                if (!last) {
                    _tile_stored(0, p0, ldp * 4);
                    _tile_stored(2, p1, ldp * 4);
                    if (two) { _tile_stored(1, p0 + 16, ldp * 4); _tile_stored(3, p1 + 16, ldp * 4); }
                    continue;
                }
                _tile_stored(0, acc, 128);
                _tile_stored(1, acc + 16, 128);
                _tile_stored(2, acc + 16 * 32, 128);
                _tile_stored(3, acc + 16 * 32 + 16, 128);
                int r = rows - mb < 32 ? rows - mb : 32;
                epi_avx512(g, acc, 32, m0 + mb, r, nb * 16);
                if (two) epi_avx512(g, acc + 16, 32, m0 + mb, r, (nb + 1) * 16);
            }
        }
    }
    _tile_release();
    return 0;
}

void tn_gemm_t8_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    if (amx_gemm(g, m0, m1, nb0, nb1, 0) < 0) tn_gemm_t8_avx512(g, m0, m1, nb0, nb1);
}

int tn_gemm_t8w2_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    return amx_gemm(g, m0, m1, nb0, nb1, 1);
}
#endif
