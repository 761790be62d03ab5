/* AMX kernel for the int8 path (Sapphire Rapids and later): TDPBUSD multiplies a 16 x 64 u8 tile of
 * activations by a 64 x 16 s8 tile of weights into 16 x 16 int32 sums, 16K multiply-adds an instruction
 * where VPDPBUSD does 64. The weights need no new layout: a 16-channel block is packed [K/4][16][4], which is
 * exactly the B tile's rows. The activations are gathered per 32 pixels into a contiguous [32][Kp] buffer
 * (the kernel's taps laid side by side, K zero-padded to a multiple of 64), reused for every channel block.
 * The last K chunk's B tile may read up to 15 rows (960 bytes) past a block: into the next block, or into the
 * 1 KiB of zeros every t8 weight buffer carries at its end (plan.py, checked in ops.c); those rows meet the
 * zero padding of the activations, so they add nothing. Sums are exact integers, so the results are
 * bit-identical to the serial kernel's. */
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(TN_SIMDE)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,popcnt,amx-tile,amx-int8")
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

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    free(p);
    p = aligned_alloc(64, (need + 63) & ~(size_t)63);
    *cap = p ? need : 0;
    return p;
}

static int gather(const tn_gemm_args *g, int m0, int rows, int Mp, int K, int Kp) {
    stage = grow(stage, &stage_cap, (size_t)Mp * Kp);
    if (!stage) return -1;
    for (int r = 0; r < Mp; r++) {
        uint8_t *dst = stage + (size_t)r * Kp;
        if (r >= rows) { memset(dst, 0, (size_t)Kp); continue; }
        for (int s = 0; s < g->S; s++) memcpy(dst + (size_t)s * g->L, g->a + g->pix[m0 + r] + g->seg[s], (size_t)g->L);
        memset(dst + K, 0, (size_t)(Kp - K));
    }
    return 0;
}

void tn_gemm_t8_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);

/* Below this depth the gather costs more than the tiles save (yolov2-tiny's first layers, K = 36 to 144, run
 * as fast or faster with VPDPBUSD straight from the padded image). */
#define AMX_MIN_K 256

/* K is walked in blocks of at most KBLOCK_BYTES of gathered pixels (Mp rows x kb·64): a block stays in L2
 * while every channel pair passes over it, where the whole gathered input of a deep layer would not
 * (yolov2-tiny's 13x13x1024 layer: 1.5 MB of pixels, read once per pair). Between blocks the sums wait in
 * ``partial`` as int32. */
#define KBLOCK_BYTES (384 << 10)

void tn_gemm_t8_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    int K = g->S * g->L, Kp = (K + 63) & ~63, nk = Kp / 64, rows = m1 - m0, Mp = (rows + 31) & ~31;
    if (K < AMX_MIN_K || gather(g, m0, rows, Mp, K, Kp) < 0) {     /* (or no memory for the buffer) */
        tn_gemm_t8_avx512(g, m0, m1, nb0, nb1);
        return;
    }
    int kb = KBLOCK_BYTES / (Mp * 64);
    kb = kb < 4 ? 4 : kb > nk ? nk : kb;
    int ldp = ((nb1 - nb0 + 1) & ~1) * 16;              /* partial sums: [Mp][ldp] int32, whole pairs */
    if (kb < nk) {
        partial = grow(partial, &partial_cap, (size_t)Mp * ldp * 4);
        if (!partial) { tn_gemm_t8_avx512(g, m0, m1, nb0, nb1); return; }
    }
    size_t wstride = (size_t)K / 4 * 64;                         /* bytes of one 16-channel block */
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
                    _tile_loadd(4, a0 + kc * 64, Kp);
                    _tile_loadd(5, a1 + kc * 64, Kp);
                    _tile_loadd(6, w0 + (size_t)kc * 1024, 64);
                    _tile_loadd(7, w1 + (size_t)kc * 1024, 64);
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
}
#endif
