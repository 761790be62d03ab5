/* The ARM kernel check, a standalone program: built by test_arm.py with a cross compiler (aarch64, armv7,
 * armv6), statically linked and run under qemu-user with CPU models that have and lack dotprod / i8mm (no
 * Python needed on the target). It prints what cpu.c finds:
 *     compiled: serial neon dotprod i8mm
 *     supported: serial neon dotprod        (tn_cpu_supports, from the auxiliary vector)
 *     selected: dotprod                     (the default: the last supported path, as module.c picks it)
 * then compares every supported path (or those named with --force, to show a missing extension traps) with the
 * serial kernels, bit for bit: random GEMM shapes with pixel and channel tails, sub-ranges of pixels and channel
 * blocks (also written from a base pixel), every activation, residuals, extreme activations and weights (int16
 * lanes at their limit), K deep enough to widen accumulators, the popcount GEMM at K = 262,144 bits and beyond,
 * the float steps (quantize, min/max, ternary activation) with ties, signed zeros and NaN, the grouped /
 * depthwise conv (strides, padding, channel tails, every activation), and the thread pool.
 * Last line: "N passed, M failed". Usage: arm_harness [cases] [--force isa ...] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tn.h"

#ifdef TN_SIMDE
/* x86 with SIMDe's emulation (-DTN_SIMDE, no cpu.c): the NEON and dot-product paths, as if the CPU had them */
const tn_kernels tn_isa_table[TN_ISA_COUNT] = {
    [TN_ISA_SERIAL] = {"serial", tn_gemm_t8_serial, tn_gemm_tt_serial, tn_quant_u8_serial, tn_minmax_f32_serial, tn_tact_bits_serial},
    [TN_ISA_NEON] = {"neon", tn_gemm_t8_neon, tn_gemm_tt_neon, tn_quant_u8_neon, tn_minmax_f32_neon, tn_tact_bits_neon,
                     tn_gconv_row_neon},
    [TN_ISA_DOTPROD] = {"dotprod", tn_gemm_t8_dotprod, tn_gemm_tt_neon, tn_quant_u8_neon, tn_minmax_f32_neon, tn_tact_bits_neon,
                        tn_gconv_row_neon},
};
int tn_cpu_supports(int isa) { return isa >= 0 && isa < TN_ISA_COUNT && tn_isa_table[isa].t8; }
#endif

static unsigned rng = 12345;
static unsigned rnd32(void) { rng = rng * 1103515245u + 12345u; return rng >> 1; }
static int rnd(int n) { return (int)((rnd32() >> 7) % (unsigned)n); }
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)rnd(1 << 20) / (float)(1 << 20); }
static uint64_t rnd64(void) { return (uint64_t)rnd32() << 40 ^ (uint64_t)rnd32() << 20 ^ rnd32(); }

static int passed, failed;
static void report(int ok, const char *what, const char *isa, const char *detail) {
    if (ok) passed++;
    else { failed++; printf("FAIL %s %s %s\n", what, isa, detail); fflush(stdout); }
}

/* one GEMM problem in the runtime's layouts; fill: 0 random, 1 extreme (activations 0, weights -1: every
 * product +128 in the s8 kernels), 2 extreme (255, +1), 3 popcount with every product +1 */
typedef struct {
    int tt, M, N, S, L, KW, NB, ldo, fill;
    uint8_t *a; void *w; int32_t *pix, *seg, *wsum, *res_pix; float *scale, *bias, *prelu, *res;
    tn_gemm_args g;
} problem;

static void make_problem(problem *P, int tt, int M, int N, int S, int L, int KW, int fill) {
    memset(P, 0, sizeof *P);
    P->tt = tt; P->M = M; P->N = N; P->S = S; P->L = L; P->KW = KW; P->fill = fill;
    P->NB = tt ? (N + 7) / 8 : (N + 15) / 16;
    int Np = P->NB * (tt ? 8 : 16);
    P->ldo = N + (rnd(3) == 0 ? rnd(9) : 0);
    size_t abytes;
    if (tt) abytes = (size_t)M * 2 * KW * 8;
    else {                     /* pixels and segments anywhere in the image, overlapping; not a byte to spare,
                                * so that a read past the last pixel's last segment is out of bounds */
        int span = 64 + rnd(4 * S * L + 1), segmax = 0, end = 0;
        P->pix = malloc(sizeof(int32_t) * M); P->seg = malloc(sizeof(int32_t) * S);
        for (int s = 0; s < S; s++) {
            P->seg[s] = s * L + 4 * rnd(5);
            segmax = P->seg[s] > segmax ? P->seg[s] : segmax;
        }
        for (int m = 0; m < M; m++) {
            P->pix[m] = rnd(span);
            end = P->pix[m] + segmax + L > end ? P->pix[m] + segmax + L : end;
        }
        abytes = (size_t)end;
    }
    P->a = malloc(abytes);
    if (tt) {
        uint64_t *A = (uint64_t *)P->a, *W;
        P->w = W = malloc((size_t)Np * KW * 2 * 8);
        for (size_t i = 0; i < (size_t)M * 2 * KW; i++) A[i] = fill == 3 ? ((i / KW) % 2 ? 0 : ~0ull) : rnd64();
        for (int nb = 0; nb < P->NB; nb++)         /* [nb][k][nz 8 | sign 8]; fill 3: channels 0-7 all +1 */
            for (int k = 0; k < KW; k++)
                for (int i = 0; i < 16; i++)
                    W[((size_t)nb * KW + k) * 16 + i] = fill == 3 && nb == 0 ? (i < 8 ? ~0ull : 0) : rnd64();
    } else {
        int8_t *W;
        size_t wn = (size_t)Np * S * L;
        P->w = W = malloc(wn);
        for (size_t i = 0; i < abytes; i++) P->a[i] = fill == 1 ? 0 : fill == 2 ? 255 : (uint8_t)rnd(256);
        for (size_t i = 0; i < wn; i++) W[i] = (int8_t)(fill == 1 ? -1 : fill == 2 ? 1 : rnd(3) - 1);
    }
    P->wsum = calloc((size_t)Np, sizeof(int32_t));
    if (!tt)                                       /* Σ codes of each channel, as the runtime packs it */
        for (int nb = 0; nb < P->NB; nb++)
            for (int k4 = 0; k4 < S * L / 4; k4++)
                for (int i = 0; i < 16; i++)
                    for (int t = 0; t < 4; t++)
                        P->wsum[nb * 16 + i] += ((int8_t *)P->w)[((size_t)nb * (S * L / 4) + k4) * 64 + 4 * i + t];
    P->scale = malloc(sizeof(float) * Np); P->bias = malloc(sizeof(float) * Np); P->prelu = malloc(sizeof(float) * Np);
    for (int n = 0; n < Np; n++) {
        P->scale[n] = frand(0.5f, 2.f) * (tt ? 0.05f : 0.002f);
        P->bias[n] = frand(-1.f, 1.f);
        P->prelu[n] = frand(0.f, 0.3f);
    }
    tn_gemm_args *g = &P->g;
    g->a = P->a; g->pix = P->pix; g->seg = P->seg; g->S = S; g->L = L; g->w = P->w; g->N = N; g->KW = KW;
    g->wsum = P->wsum; g->zp = tt ? 0 : rnd(256); g->scale = P->scale; g->bias = P->bias;
    g->act = rnd(5); g->prelu = P->prelu; g->ldo = P->ldo;
    if (rnd(3) == 0) {                             /* a residual over some of the channels, straddling blocks */
        int c = 1 + rnd(N), off = rnd(N - c + 1), stride = c + rnd(3);
        P->res = malloc(sizeof(float) * ((size_t)M * stride + 1));
        P->res_pix = malloc(sizeof(int32_t) * M);
        for (int i = 0; i < M * stride; i++) P->res[i] = frand(-2.f, 2.f);
        for (int m = 0; m < M; m++) P->res_pix[m] = m * stride;
        g->res = P->res; g->res_pix = P->res_pix; g->res_c = c; g->res_off = off;
    }
}

static void free_problem(problem *P) {
    free(P->a); free(P->w); free(P->pix); free(P->seg); free(P->wsum); free(P->scale); free(P->bias);
    free(P->prelu); free(P->res); free(P->res_pix);
}

/* ref and fn over the same pixel / channel-block ranges (whole, or a random sub-range as the executor's tasks
 * get; sometimes into a block of just those rows, m_base = m0, as the fused conv + maxpool does), outputs
 * pre-filled with the same pattern so that a write outside the range shows too */
static int compare_gemm(problem *P, tn_gemm_fn ref, tn_gemm_fn fn, int sub) {
    int m0 = 0, m1 = P->M, nb0 = 0, nb1 = P->NB;
    if (sub) {
        m0 = rnd(P->M); m1 = m0 + 1 + rnd(P->M - m0);
        nb0 = rnd(P->NB); nb1 = nb0 + 1 + rnd(P->NB - nb0);
    }
    P->g.m_base = sub && rnd(2) ? m0 : 0;
    size_t n = (size_t)(P->M - P->g.m_base) * P->ldo + 1;
    float *o1 = malloc(sizeof(float) * n), *o2 = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) o1[i] = o2[i] = -7.25f;
    P->g.out = o1; ref(&P->g, m0, m1, nb0, nb1);
    P->g.out = o2; fn(&P->g, m0, m1, nb0, nb1);
    int ok = memcmp(o1, o2, sizeof(float) * n) == 0;
    free(o1); free(o2);
    P->g.m_base = 0;
    return ok;
}

static void gemm_case(const char *isa, int tt, tn_gemm_fn fn, int M, int N, int S, int L, int KW, int fill, int sub) {
    problem P;
    make_problem(&P, tt, M, N, S, L, KW, fill);
    char d[160];
    snprintf(d, sizeof d, "%s M=%d N=%d S=%d L=%d KW=%d fill=%d act=%d res=%d ldo=%d sub=%d", tt ? "tt" : "t8", M, N,
             S, L, KW, fill, P.g.act, P.g.res != NULL, P.ldo, sub);
    report(compare_gemm(&P, tt ? tn_gemm_tt_serial : tn_gemm_t8_serial, fn, sub), "gemm", isa, d);
    free_problem(&P);
}

/* the executor's way: tasks of pixel ranges x channel blocks through the thread pool (64-bit atomics: on
 * armv6 the libatomic calls) */
typedef struct { problem *P; tn_gemm_fn fn; int mt, nt; } pool_job;
static void pool_task(void *p, int t) {
    pool_job *j = p;
    int mi = t / j->nt, ni = t % j->nt, M = j->P->M, NB = j->P->NB;
    j->fn(&j->P->g, M * mi / j->mt, M * (mi + 1) / j->mt, NB * ni / j->nt, NB * (ni + 1) / j->nt);
}
static void pool_case(const char *isa, int tt, tn_gemm_fn fn) {
    problem P;
    make_problem(&P, tt, 37, tt ? 40 : 80, 3, 48, tt ? 5 : 0, 0);
    size_t n = (size_t)P.M * P.ldo;
    float *o1 = calloc(n, sizeof(float)), *o2 = malloc(sizeof(float) * n);
    P.g.out = o1; (tt ? tn_gemm_tt_serial : tn_gemm_t8_serial)(&P.g, 0, P.M, 0, P.NB);
    int ok = 1;
    for (int rep = 0; rep < 20 && ok; rep++) {
        memset(o2, 0, sizeof(float) * n);
        P.g.out = o2;
        pool_job j = {&P, fn, 5, P.NB};
        tn_parallel(j.mt * j.nt, pool_task, &j);
        ok = memcmp(o1, o2, sizeof(float) * n) == 0;
    }
    report(ok, "pool", isa, tt ? "tt 3 threads" : "t8 3 threads");
    free(o1); free(o2); free_problem(&P);
}

static float special(void) {
    static const float v[] = {0.f, -0.f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 1e30f, -1e30f,
                              1e-40f, -1e-40f, 254.5f, 255.5f, 511.5f, -511.5f, 600.f, -600.f};
    return v[rnd((int)(sizeof v / sizeof v[0]))];
}

static void float_steps(const char *isa, const tn_kernels *k, int cases) {
    char d[96];
    for (int c = 0; c < cases; c++) {               /* quantize: n with tails, ties at .5, clamping */
        int n = rnd(200), zp = rnd(256);
        float inv = rnd(4) == 0 ? 1.f : frand(0.1f, 60.f), *x = malloc(sizeof(float) * (n + 1));
        uint8_t *o1 = malloc(n + 1), *o2 = malloc(n + 1);
        for (int i = 0; i < n; i++) x[i] = rnd(5) == 0 ? special() : frand(-12.f, 12.f);
        tn_quant_u8_serial(x, o1, n, inv, zp);
        k->quant(x, o2, n, inv, zp);
        snprintf(d, sizeof d, "n=%d inv=%g zp=%d", n, inv, zp);
        report(memcmp(o1, o2, n) == 0, "quant", isa, d);
        free(x); free(o1); free(o2);
    }
    for (int c = 0; c < cases; c++) {               /* min/max: with 0, NaN skipped, signed zeros, infinities */
        size_t n = (size_t)rnd(300);
        float *x = malloc(sizeof(float) * (n + 1)), r1[2], r2[2];
        int sign = rnd(3) - 1;                     /* all positive, mixed, all negative */
        for (size_t i = 0; i < n; i++) {
            x[i] = frand(0.f, 5.f) * (sign ? (float)sign : frand(-1.f, 1.f));
            if (rnd(40) == 0) x[i] = rnd(2) ? NAN : special();
            if (rnd(200) == 0) x[i] = rnd(2) ? INFINITY : -INFINITY;
        }
        tn_minmax_f32_serial(x, n, &r1[0], &r1[1]);
        k->minmax(x, n, &r2[0], &r2[1]);
        snprintf(d, sizeof d, "n=%zu", n);
        report(memcmp(r1, r2, sizeof r1) == 0, "minmax", isa, d);
        free(x);
    }
    for (int c = 0; c < cases; c++) {               /* ternary activation: t exactly ±0.5, NaN */
        int C = 8 * (1 + rnd(24));
        float *x = malloc(sizeof(float) * C), *a = malloc(sizeof(float) * C), *b = malloc(sizeof(float) * C);
        uint8_t n1[24], s1[24], n2[24], s2[24];
        for (int i = 0; i < C; i++) {
            a[i] = rnd(3) ? frand(0.2f, 3.f) : 1.f;
            b[i] = rnd(3) ? frand(-0.5f, 0.5f) : 0.f;
            x[i] = rnd(4) ? frand(-1.5f, 1.5f) : rnd(8) ? special() : NAN;
        }
        tn_tact_bits_serial(x, a, b, C, n1, s1);
        k->tact(x, a, b, C, n2, s2);
        snprintf(d, sizeof d, "C=%d", C);
        report(memcmp(n1, n2, C / 8) == 0 && memcmp(s1, s2, C / 8) == 0, "tact", isa, d);
        free(x); free(a); free(b);
    }
}

/* the grouped conv: depthwise (the SIMD path) and grouped (the serial fallback), every row of the output */
static void gconv_steps(const char *isa, const tn_kernels *k, int cases) {
    char d[96];
    static const int acts[] = {TN_ACT_LINEAR, TN_ACT_RELU, TN_ACT_LEAKY, TN_ACT_LOGISTIC};
    for (int c = 0; c < cases; c++) {
        int groups_of_one = c % 4 != 3, Cg = groups_of_one ? 1 : 1 + rnd(3);
        int N = groups_of_one ? 1 + rnd(c % 2 ? 13 : 70) : Cg * (1 + rnd(6)), C = N;   /* groups = N / Cg */
        int kh = 1 + rnd(5), kw = 1 + rnd(5), stride = 1 + rnd(2), H = 1 + rnd(9), W = 1 + rnd(9);
        int pt = rnd(kh), pl = rnd(kw);
        tn_gconv_args a = {0};
        a.H = H; a.W = W; a.C = C; a.N = N; a.Cg = Cg; a.Ng = Cg; a.kh = kh; a.kw = kw; a.stride = stride;
        a.pt = pt; a.pl = pl; a.act = acts[rnd(4)];
        a.Ho = (H + 2 * pt - kh) / stride + 1; a.Wo = (W + 2 * pl - kw) / stride + 1;
        if (a.Ho < 1 || a.Wo < 1) { a.Ho = a.Ho < 1 ? 1 : a.Ho; a.Wo = a.Wo < 1 ? 1 : a.Wo; }
        float *x = malloc(sizeof(float) * 2 * H * W * C), *w = malloc(sizeof(float) * kh * kw * Cg * N);
        float *sc = malloc(sizeof(float) * N), *bi = malloc(sizeof(float) * N);
        size_t out = (size_t)2 * a.Ho * a.Wo * N;
        float *o1 = malloc(sizeof(float) * out), *o2 = malloc(sizeof(float) * out);
        for (int i = 0; i < 2 * H * W * C; i++) x[i] = rnd(30) ? frand(-3.f, 3.f) : special();
        for (int i = 0; i < kh * kw * Cg * N; i++) w[i] = (float)(rnd(3) - 1);       /* ternary codes */
        for (int i = 0; i < N; i++) { sc[i] = frand(0.01f, 2.f); bi[i] = frand(-1.f, 1.f); }
        a.x = x; a.w = w; a.scale = sc; a.bias = bi;
        for (int b = 0; b < 2; b++)
            for (int oy = 0; oy < a.Ho; oy++) {
                a.out = o1; tn_gconv_row_serial(&a, b, oy);
                a.out = o2; k->gconv(&a, b, oy);
            }
        snprintf(d, sizeof d, "N=%d Cg=%d k=%dx%d s=%d HxW=%dx%d act=%d", N, Cg, kh, kw, stride, H, W, a.act);
        report(memcmp(o1, o2, sizeof(float) * out) == 0, "gconv", isa, d);
        free(x); free(w); free(sc); free(bi); free(o1); free(o2);
    }
}

static int in_list(const void *f, const void **seen, int n) {
    for (int i = 0; i < n; i++) if (seen[i] == f) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int cases = 60, nforce = 0;
    const char *force[TN_ISA_COUNT];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") && i + 1 < argc && nforce < TN_ISA_COUNT) force[nforce++] = argv[++i];
        else cases = atoi(argv[i]);
    }
    int best = 0;
    printf("compiled:");
    for (int i = 0; i < TN_ISA_COUNT; i++) if (tn_isa_table[i].t8) printf(" %s", tn_isa_table[i].name);
    printf("\nsupported:");
    for (int i = 0; i < TN_ISA_COUNT; i++) if (tn_cpu_supports(i)) { printf(" %s", tn_isa_table[i].name); best = i; }
    printf("\nselected: %s\n", tn_isa_table[best].name);
    fflush(stdout);

    const void *seen[5 * TN_ISA_COUNT];
    int nseen = 0;
    tn_set_threads(3);
    pool_case("serial", 0, tn_gemm_t8_serial);       /* the pool alone (armv6 without NEON runs just this) */
    pool_case("serial", 1, tn_gemm_tt_serial);
    for (int i = 1; i < TN_ISA_COUNT; i++) {
        const tn_kernels *k = &tn_isa_table[i];
        int run = nforce ? 0 : tn_cpu_supports(i);
        for (int f = 0; f < nforce; f++) run |= k->t8 && !strcmp(force[f], k->name);
        if (!run) continue;
        printf("testing %s\n", k->name);
        fflush(stdout);
        for (int tt = 0; tt < 2; tt++) {
            tn_gemm_fn fn = tt ? k->tt : k->t8;
            if (in_list((const void *)fn, seen, nseen)) continue;   /* the popcount GEMM is shared by NEON paths */
            seen[nseen++] = (const void *)fn;
            for (int c = 0; c < cases; c++) {
                int M = 1 + rnd(c % 3 ? 20 : 70), N = 1 + rnd(c % 4 ? 40 : 100), S = 1 + rnd(9);
                int L = 4 * (1 + rnd(c % 5 ? 24 : 100)), KW = 1 + rnd(c % 5 ? 6 : 40);
                gemm_case(k->name, tt, fn, M, N, S, L, KW, 0, c % 2);
            }
            if (!tt) {
                gemm_case(k->name, 0, fn, 13, 16, 9, 12, 0, 0, 0);      /* first conv: 3 channels padded to 4 */
                gemm_case(k->name, 0, fn, 9, 33, 2, 1200, 0, 0, 0);     /* 600 k4 steps: int16 lanes widened */
                gemm_case(k->name, 0, fn, 11, 20, 3, 1024, 0, 1, 0);    /* every product +128 */
                gemm_case(k->name, 0, fn, 11, 20, 3, 1020, 0, 2, 0);    /* every activation 255 */
                gemm_case(k->name, 0, fn, 70, 64, 9, 64, 0, 0, 0);
            } else {
                gemm_case(k->name, 1, fn, 5, 16, 1, 0, 4096, 3, 0);     /* K = 262,144 bits, every product +1 */
                gemm_case(k->name, 1, fn, 6, 16, 1, 0, 4101, 3, 0);
                gemm_case(k->name, 1, fn, 7, 12, 1, 0, 4200, 0, 0);
            }
            pool_case(k->name, tt, fn);
        }
        const void *fl[3] = {(const void *)k->quant, (const void *)k->minmax, (const void *)k->tact};
        if (!in_list(fl[0], seen, nseen) && k->quant != tn_quant_u8_serial) {
            float_steps(k->name, k, cases);
            for (int f = 0; f < 3; f++) seen[nseen++] = fl[f];
        }
        if (k->gconv && k->gconv != tn_gconv_row_serial && !in_list((const void *)k->gconv, seen, nseen)) {
            gconv_steps(k->name, k, cases);
            seen[nseen++] = (const void *)k->gconv;
        }
    }
    tn_set_threads(1);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
