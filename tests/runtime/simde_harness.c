/* Runs the AVX-512 and NEON kernels and the AVX2 quantizer (compiled against SIMDe's emulation, -DTN_SIMDE) on
 * random problems and compares them with the serial kernels; prints "N passed, M failed". Built by
 * test_emulated_isas.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tn.h"

static unsigned rng = 12345;
static int rnd(int n) { rng = rng * 1103515245u + 12345u; return (int)((rng >> 8) % (unsigned)n); }

static int run_case(const char *name, tn_gemm_fn ref, tn_gemm_fn fn, int tt, int M, int N, int S, int L, int KW) {
    int NB = tt ? (N + 7) / 8 : (N + 15) / 16, Np = NB * (tt ? 8 : 16);
    size_t abytes = tt ? (size_t)M * 2 * KW * 8 : (size_t)(M + S) * S * L + 64, wbytes = tt ? (size_t)Np * KW * 16 : (size_t)Np * S * L;
    uint8_t *a = malloc(abytes);
    int8_t *w = malloc(tt ? wbytes * 8 : wbytes);
    int32_t *pix = malloc(sizeof(int32_t) * M), *seg = malloc(sizeof(int32_t) * S), *wsum = calloc(Np, 4);
    float *scale = malloc(4 * Np), *bias = calloc(Np, 4), *o1 = calloc((size_t)M * N, 4), *o2 = calloc((size_t)M * N, 4);
    for (size_t i = 0; i < abytes; i++) a[i] = (uint8_t)rnd(256);
    if (tt) {
        uint64_t *ww = (uint64_t *)w;
        for (size_t i = 0; i < wbytes; i++) ww[i] = ((uint64_t)rnd(1 << 30) << 34) ^ ((uint64_t)rnd(1 << 30) << 4) ^ (uint64_t)rnd(16);
    } else {
        for (size_t i = 0; i < wbytes; i++) w[i] = (int8_t)(rnd(3) - 1);
    }
    for (int i = 0; i < M; i++) pix[i] = i * L;
    for (int s = 0; s < S; s++) seg[s] = s * L;
    for (int n = 0; n < Np; n++) scale[n] = 1.f;
    if (!tt)                                   /* wsum = Σ codes of each channel, as the runtime packs it */
        for (int nb = 0; nb < NB; nb++)
            for (int k4 = 0; k4 < S * L / 4; k4++)
                for (int i = 0; i < 16; i++)
                    for (int t = 0; t < 4; t++) wsum[nb * 16 + i] += w[((size_t)nb * (S * L / 4) + k4) * 64 + 4 * i + t];
    tn_gemm_args g = {0};
    g.a = a; g.pix = pix; g.seg = seg; g.S = S; g.L = L; g.w = w; g.N = N; g.KW = KW; g.wsum = wsum;
    g.zp = tt ? 0 : rnd(256); g.scale = scale; g.bias = bias; g.act = TN_ACT_LINEAR; g.ldo = N;
    g.out = o1; ref(&g, 0, M, 0, NB);
    g.out = o2; fn(&g, 0, M, 0, NB);
    int ok = memcmp(o1, o2, sizeof(float) * M * N) == 0;
    if (!ok) printf("FAIL %s M=%d N=%d S=%d L=%d KW=%d\n", name, M, N, S, L, KW);
    free(a); free(w); free(pix); free(seg); free(wsum); free(scale); free(bias); free(o1); free(o2);
    return ok;
}

int main(void) {
    int passed = 0, failed = 0;
    int shapes[][4] = {{1, 16, 1, 4}, {13, 40, 9, 16}, {29, 16, 9, 4}, {7, 33, 1, 1024}, {50, 64, 9, 64}, {3, 8, 2, 300}, {23, 80, 3, 12}};
    for (int k = 0; k < (int)(sizeof shapes / sizeof shapes[0]); k++) {
        int M = shapes[k][0], N = shapes[k][1], S = shapes[k][2], L = shapes[k][3] - shapes[k][3] % 4;
        int KW = 1 + (S * L) / 64;
        struct { const char *n; tn_gemm_fn r, f; int tt; } c[] = {
            {"t8_avx512", tn_gemm_t8_serial, tn_gemm_t8_avx512, 0}, {"tt_avx512", tn_gemm_tt_serial, tn_gemm_tt_avx512, 1},
            {"t8_neon", tn_gemm_t8_serial, tn_gemm_t8_neon, 0}, {"tt_neon", tn_gemm_tt_serial, tn_gemm_tt_neon, 1}};
        for (int i = 0; i < 4; i++) {
            if (run_case(c[i].n, c[i].r, c[i].f, c[i].tt, M, N, S, L, KW)) passed++; else failed++;
        }
    }
    /* ternary activations as 8-bit codes: masked tails, and t exactly at the thresholds */
    int lens[] = {1, 15, 16, 17, 100};
    for (int k = 0; k < 5; k++) {
        int n = lens[k];
        float x[100], a[100], b[100];
        uint8_t o1[100], o2[100];
        for (int i = 0; i < n; i++) {
            x[i] = (float)(rnd(2001) - 1000) / 500.f;
            a[i] = (float)(rnd(8) + 1) / 4.f; b[i] = (float)(rnd(5) - 2) / 4.f;
            if (i % 7 == 0) { a[i] = 1.f; b[i] = 0.f; x[i] = i % 14 ? 0.5f : -0.5f; }
        }
        tn_tact_codes_serial(x, a, b, (size_t)n, o1);
        memset(o2, 0xAA, sizeof o2);
        tn_tact_codes_avx512(x, a, b, (size_t)n, o2);
        int ok = memcmp(o1, o2, (size_t)n) == 0 && o2[n < 100 ? n : 99] == (n < 100 ? 0xAA : o1[99]);
        if (!ok) printf("FAIL tact_codes_avx512 n=%d\n", n);
        if (ok) passed++; else failed++;
    }
    /* int8 quantization, each vector kernel against the serial one: saturation both ways, ties to even, the tail */
    const struct { const char *name; tn_quant_fn fn; } quants[] = {{"avx512", tn_quant_u8_avx512},
                                                                     {"avx2", tn_quant_u8_avx2}};
    for (int qk = 0; qk < 2; qk++) {
        for (int k = 0; k < 5; k++) {
            int n = lens[k], zp = rnd(256);
            float x[100], inv = 1.f / ((float)(rnd(50) + 1) / 100.f);
            uint8_t o1[100], o2[100];
            for (int i = 0; i < n; i++) x[i] = (float)(rnd(4001) - 2000) / 40.f;
            if (n > 3) { x[0] = 2.5f / inv; x[1] = -1e30f; x[2] = 1e30f; }
            tn_quant_u8_serial(x, o1, n, inv, zp);
            quants[qk].fn(x, o2, n, inv, zp);
            int ok = memcmp(o1, o2, (size_t)n) == 0;
            if (!ok) printf("FAIL quant_u8_%s n=%d\n", quants[qk].name, n);
            if (ok) passed++; else failed++;
        }
        /* every half step from -520 to 520 at scale 1 (ties both ways, both clamps), infinities and NaN */
        float x[2100];
        uint8_t o1[2100], o2[2100];
        int n = 0;
        for (int h = -1040; h <= 1040; h++) x[n++] = (float)h / 2.f;
        x[n++] = INFINITY; x[n++] = -INFINITY; x[n++] = NAN;
        int ok = 1;
        for (int zp = 0; zp < 256; zp += 51) {
            tn_quant_u8_serial(x, o1, n, 1.f, zp);
            quants[qk].fn(x, o2, n, 1.f, zp);
            ok &= memcmp(o1, o2, (size_t)n) == 0 && o1[1040 + 5] == (uint8_t)(zp + 2 > 255 ? 255 : zp + 2)
                  && o1[n - 3] == 255 && o1[n - 2] == 0 && o1[n - 1] == 0;      /* 2.5 -> 2; inf, -inf, NaN */
        }
        if (!ok) printf("FAIL quant_u8_%s ties\n", quants[qk].name);
        if (ok) passed++; else failed++;
    }
    /* 2-bit weights (tn.h) expanded to int8: every byte value, K not a multiple of 64, a block range not from 0,
     * and the 1 KiB of zeros after; the offset pointer e.w must address block nb0 */
    int depths[] = {4, 60, 64, 300, 1152};
    for (int k = 0; k < 5; k++) {
        int K = depths[k], Kp4 = (K + 63) / 64 * 16, nb0 = k % 2, nb1 = nb0 + 1 + k % 3;
        uint8_t *w2 = malloc((size_t)nb1 * Kp4 * 16);
        for (size_t i = 0; i < (size_t)nb1 * Kp4 * 16; i++) w2[i] = (uint8_t)(k == 0 ? i : rnd(256));
        tn_gemm_args g = {0}, e1, e2;
        g.w = w2; g.S = 1; g.L = K;
        size_t n = TN_W2_INT8_BYTES(&g, nb1 - nb0);
        int8_t *b1 = malloc(n), *b2 = malloc(n);
        memset(b2, 0x55, n);
        tn_w2_as_int8(&g, nb0, nb1, b1, &e1);
        tn_w2_as_int8_avx512(&g, nb0, nb1, b2, &e2);
        int ok = memcmp(b1, b2, n) == 0 && (const int8_t *)e2.w + (size_t)nb0 * K * 16 == b2;
        if (!ok) printf("FAIL w2_as_int8_avx512 K=%d blocks %d..%d\n", K, nb0, nb1);
        if (ok) passed++; else failed++;
        free(w2); free(b1); free(b2);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
