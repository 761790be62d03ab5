/* Serial reference kernels: the portable fallback and the oracle every SIMD path is tested against. */
#include <string.h>
#include "tn_epilogue.h"
#include "tn_gconv.h"

static int tn_popcount64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcountll(x);
#else
    int c = 0;
    while (x) { x &= x - 1; c++; }
    return c;
#endif
}

void tn_gemm_t8_serial(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    const int8_t *w = (const int8_t *)g->w;
    int K4 = g->S * g->L / 4;
    int32_t acc[16];
    for (int nb = nb0; nb < nb1; nb++) {
        const int8_t *wb = w + (size_t)nb * K4 * 64;
        for (int m = m0; m < m1; m++) {
            for (int i = 0; i < 16; i++) acc[i] = 0;
            int k4 = 0;
            for (int s = 0; s < g->S; s++) {
                const uint8_t *a = g->a + g->pix[m] + g->seg[s];
                for (int j = 0; j < g->L; j += 4, k4++) {
                    const int8_t *wk = wb + (size_t)k4 * 64;
                    for (int i = 0; i < 16; i++)
                        for (int t = 0; t < 4; t++) acc[i] += (int32_t)a[j + t] * wk[4 * i + t];
                }
            }
            tn_epilogue(g, acc, 16, m, 1, nb * 16, 16);
        }
    }
}

void tn_w2_as_int8(const tn_gemm_args *g, int nb0, int nb1, int8_t *buf, tn_gemm_args *e) {
    static const int8_t value[4] = {0, 1, 0, -1};
    int K = g->S * g->L, K4 = K / 4, Kp4 = (K + 63) / 64 * 16;
    size_t block = (size_t)K * 16;
    for (int nb = nb0; nb < nb1; nb++) {
        const uint8_t *src = (const uint8_t *)g->w + (size_t)nb * Kp4 * 16;
        int8_t *out = buf + (size_t)(nb - nb0) * block;
        for (int r = 0; r < K4; r++)
            for (int c = 0; c < 16; c++) {
                unsigned b = src[r * 16 + TN_W2_SLOT(c)];
                for (int j = 0; j < 4; j++) out[(size_t)r * 64 + 4 * c + j] = value[(b >> 2 * j) & 3];
            }
    }
    memset(buf + (size_t)(nb1 - nb0) * block, 0, 1024);
    *e = *g;
    e->w = (const void *)((uintptr_t)buf - (uintptr_t)nb0 * block);
}

void tn_gemm_tt_serial(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    const uint64_t *w = (const uint64_t *)g->w, *A = (const uint64_t *)g->a;
    int KW = g->KW;
    int32_t acc[8];
    for (int nb = nb0; nb < nb1; nb++) {
        const uint64_t *wb = w + (size_t)nb * KW * 16;
        for (int m = m0; m < m1; m++) {
            const uint64_t *anz = A + (size_t)m * 2 * KW, *asg = anz + KW;
            for (int i = 0; i < 8; i++) {
                int32_t s = 0;
                for (int k = 0; k < KW; k++) {
                    uint64_t both = anz[k] & wb[k * 16 + i];
                    uint64_t neg = both & (asg[k] ^ wb[k * 16 + 8 + i]);
                    s += tn_popcount64(both) - 2 * tn_popcount64(neg);
                }
                acc[i] = s;
            }
            tn_epilogue(g, acc, 8, m, 1, nb * 8, 8);
        }
    }
}

void tn_quant_u8_serial(const float *x, uint8_t *o, int n, float inv, int zp) {
    for (int i = 0; i < n; i++) {
        float v = x[i] * inv;
        v = v < -512.f ? -512.f : v > 512.f ? 512.f : v;
        v = ((v + 12582912.f) - 12582912.f) + (float)zp;     /* 1.5·2^23: round half to even */
        o[i] = (uint8_t)(v < 0.f ? 0.f : v > 255.f ? 255.f : v);
    }
}

void tn_minmax_f32_serial(const float *x, size_t n, float *mn, float *mx) {
    float a = 0.f, b = 0.f;
    for (size_t i = 0; i < n; i++) { a = x[i] < a ? x[i] : a; b = x[i] > b ? x[i] : b; }
    *mn = a; *mx = b;
}

void tn_tact_bits_serial(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg) {
    for (int c = 0; c < C; c += 8) {
        uint8_t n = 0, g = 0;
        for (int i = 0; i < 8; i++) {
            float v = a[c + i] * x[c + i] + b[c + i];
            if (v >= 0.5f) n |= (uint8_t)(1u << i);
            else if (v < -0.5f) { n |= (uint8_t)(1u << i); g |= (uint8_t)(1u << i); }
        }
        nz[c >> 3] = n; sg[c >> 3] = g;
    }
}

void tn_tact_codes_serial(const float *x, const float *a, const float *b, size_t n, uint8_t *o) {
    for (size_t i = 0; i < n; i++) {
        float v = a[i] * x[i] + b[i];
        o[i] = (uint8_t)(1 + (v >= 0.5f) - (v < -0.5f));
    }
}

/* The grouped / depthwise conv (tn.h), the reference every SIMD version is compared with: the frame of
 * tn_gconv.h with a tap that sums each output channel's group of input channels in ci order. */
static void gconv_tap_serial(const tn_gconv_args *g, float *o, const float *w, const float *x) {
    int N = g->N, Cg = g->Cg, Ng = g->Ng;
    for (int n = 0; n < N; n++) {
        const float *xc = x + (size_t)(n / Ng) * Cg;
        float acc = o[n];
        for (int ci = 0; ci < Cg; ci++) acc += w[(size_t)ci * N + n] * xc[ci];
        o[n] = acc;
    }
}

static void gconv_finish_serial(const tn_gconv_args *g, float *o) { tn_gconv_finish_from(g, o, 0); }

void tn_gconv_row_serial(const tn_gconv_args *g, int b, int oy) {
    tn_gconv_frame(g, b, oy, gconv_tap_serial, gconv_finish_serial);
}
