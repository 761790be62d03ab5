/* Op implementations; each splits its work into tasks for the thread pool. Integer parameters are named
 * by the enums below, in the order tritnet_rt/plan.py writes them. */
#include "ops.h"
#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include "tn_epilogue.h"

/* ---- conv parameters (shared by the three conv ops) */
enum { C_B, C_H, C_W, C_C, C_CP, C_HP, C_WP, C_PT, C_PL, C_M, C_N, C_S, C_L, C_ACT, C_RES, C_RESC, C_RESOFF,
       C_RESIMG, C_FIXQ, C_FIXZP, C_KW, C_NB, C_POOL, C_WO, C_PLANAR, C_XQ, C_QOUT, C_QZP, C_QHP, C_QWP, C_QCP,
       C_QPT, C_QPL, C_TIN, C_W2, C_QSLACK, C_LAST = C_QSLACK };

/* A conv smaller than tn_par_min_macs (multiply-adds, ops.h) runs on the calling thread: handing its jobs to
 * another core costs a few microseconds of synchronisation (the workers spin between a forward pass's layers),
 * more than a second thread saves on a conv of a few microseconds. 1e6 for the vector ISAs, set on Zen 4
 * (ab_builds, 2 threads, batch 1, against 8e6: AVX-512 ResNet-20 0.29 -> 0.21 ms and STTN ResNet-20 0.27 ->
 * 0.24, bench/results/ab_par_min_macs_zen4.json; AVX2 STTN 0.41 -> 0.33 and ttt5_224_160 1.33 -> 1.20,
 * ResNet-20 the same, ab_par_min_macs_zen4_avx2.json; 2.5e5 and 0 time as 1e6 within 5%,
 * ab_par_min_macs_1e6_vs_*_zen4.json). 8e6 on AMX, whose convs take a few microseconds: on the Xeon, 2e6
 * made ResNet-20 on 2 threads 29% slower with AMX and 2% slower with AVX-512 (where Zen 4 gained 27%;
 * ab_par_min_macs_2e6_xeon_*.json).
 * It was 8e6 when idle workers slept between layers (Zen 3: ResNet-20 at batch 1 1.4 ms on 2 threads against
 * 0.9 on one). The tasks and their results are the same either way. Per thread: run_together runs plans on
 * several. */
static __thread int serial_op;

static void par(int ntasks, tn_task_fn fn, void *ctx) {
    if (serial_op) { for (int t = 0; t < ntasks; t++) fn(ctx, t); return; }
    tn_parallel(ntasks, fn, ctx);
}

/* k: the multiply-adds of one output value (kh·kw·channels) */
double tn_par_min_macs(int isa) { return isa == TN_ISA_AMX ? TN_PAR_MIN_MACS_AMX : TN_PAR_MIN_MACS; }

static int conv_is_small(const int *I, double k, int isa) {
    return (double)I[C_B] * I[C_M] * I[C_N] * k < tn_par_min_macs(isa);
}
enum { B_X, B_Q, B_PIX, B_SEG, B_W, B_WSUM, B_WSCALE, B_BIAS, B_PRELU, B_OUT, B_RES, B_RESPIX, B_SCR, B_AFF_A,
       B_AFF_B, B_A };

#define CONV_INTS {"batch", "height", "width", "channels", "channels_padded", "height_padded", "width_padded", \
    "pad_top", "pad_left", "pixels", "out_channels", "segments", "segment_len", "activation", "residual", \
    "residual_channels", "residual_offset", "residual_image", "fixed_quant", "fixed_zp", "kwords", "blocks", \
    "pool", "out_width", "x_planar", "x_quantized", "quantized_out", "out_zp", "out_height_padded", \
    "out_width_padded", "out_channels_padded", "out_pad_top", "out_pad_left", "ternary_input", "weights_2bit", \
    "input_slack"}
#define CONV_BUFS "x", "q", "pixel_table", "segment_table", "weights", "weight_sums", "scale", "bias", "prelu", "out", \
    "residual", "residual_pixels", "scratch"
const tn_op_desc tn_op_table[] = {
    {OP_CONV_T8, "conv_t8", CONV_INTS, {CONV_BUFS, "act_a", "act_b"}, NULL},
    {OP_CONV_TT, "conv_tt", CONV_INTS, {CONV_BUFS, "act_a", "act_b", "bits"}, NULL},
    {OP_CONV_F32, "conv_f32", CONV_INTS, {CONV_BUFS}, NULL},
    {OP_MAXPOOL, "maxpool", {"batch", "height", "width", "channels", "out_height", "out_width", "size", "stride",
                             "pad_top", "pad_left"}, {"x", "out"}, NULL},
    {OP_AVGPOOL, "avgpool", {"batch", "height", "width", "channels"}, {"x", "out"}, NULL},
    {OP_CONCAT, "concat", {"batch", "pixels", "inputs", "out_channels"},
     {"out", "in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7", "in8", "in9", "in10", "in11", "in12", "in13",
      "in14", "in15"}, "input_channels"},
    {OP_ADD, "add", {"elements", "activation", "tasks"}, {"a", "b", "out"}, NULL},
    {OP_UPSAMPLE, "upsample", {"batch", "height", "width", "channels", "stride"}, {"x", "out"}, NULL},
    {OP_GATHER, "gather", {"batch", "out_elements", "in_elements"}, {"x", "index", "out"}, NULL},
    {OP_LINEAR, "linear", {"batch", "in_features", "out_features", "activation"}, {"x", "weights", "bias", "out"}, NULL},
    {OP_ACT, "act", {"elements", "activation", "tasks"}, {"x", "out"}, NULL},
    {OP_SLICE, "slice", {"batch", "pixels", "channels", "start", "out_channels"}, {"x", "out"}, NULL},
    {OP_CONV_GROUPED, "conv_grouped", {"batch", "height", "width", "channels", "out_height", "out_width",
                                       "out_channels", "kernel_h", "kernel_w", "stride", "pad_top", "pad_left",
                                       "groups", "activation"}, {"x", "weights", "scale", "bias", "out"}, NULL},
    {OP_SCALE_CHANNELS, "scale_channels", {"batch", "pixels", "channels", "activation"}, {"x", "scale", "out"}, NULL},
    {OP_SHORTCUT, "shortcut", {"batch", "pixels", "channels", "inputs", "activation", "weighted"},
     {"out", "x", "weights", "in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7", "in8", "in9", "in10", "in11",
      "in12", "in13", "in14"}, "input_channels"},
};
const int tn_op_count = (int)(sizeof tn_op_table / sizeof tn_op_table[0]);

typedef struct { const tn_op *op; int isa; float *mm; int chunks; const float *sc; const int *zp;
                 tn_gemm_args *args; int mtasks, ntasks, nbper, munit; } conv_ctx;

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(__clang__)
#define TN_CLONES __attribute__((target_clones("avx2", "default")))
#define TN_CLONES_512 __attribute__((target_clones("avx512f", "avx2", "default")))   /* 16-float vectors */
#else
#define TN_CLONES
#define TN_CLONES_512
#endif

/* 1. min/max of every image (for the dynamic int8 scale) */
TN_CLONES static void minmax_task(void *p, int t) {
    conv_ctx *c = p; const int *I = c->op->i;
    int b = t / c->chunks, k = t % c->chunks;
    size_t n = (size_t)I[C_H] * I[C_W] * I[C_C], lo = n * k / c->chunks, hi = n * (k + 1) / c->chunks;
    const float *x = (const float *)c->op->b[B_X] + (size_t)b * n;
    float mn, mx;
    tn_isa_table[c->isa].minmax(x + lo, hi - lo, &mn, &mx);
    c->mm[2 * t] = mn; c->mm[2 * t + 1] = mx;
}

/* 2. quantize one padded row: u = clamp(round(x / scale) + zp), padding and extra channels = zp */
TN_CLONES static void quant_task(void *p, int t) {
    conv_ctx *c = p; const int *I = c->op->i;
    int b = t / I[C_HP], y = t % I[C_HP], iy = y - I[C_PT], W = I[C_W], C = I[C_C], Cp = I[C_CP], Wp = I[C_WP];
    uint8_t *row = (uint8_t *)c->op->b[B_Q] + ((size_t)b * I[C_HP] + y) * Wp * Cp;
    uint8_t zp = (uint8_t)c->zp[b];
    memset(row, zp, (size_t)Wp * Cp);
    if (iy < 0 || iy >= I[C_H]) return;
    float inv = 1.f / c->sc[b];
    tn_quant_fn quant = tn_isa_table[c->isa].quant;
    uint8_t tmp[4096];
    if (I[C_PLANAR]) {                       /* the network's input, NCHW: each channel's row, then interleaved */
        const float *plane = (const float *)c->op->b[B_X] + (size_t)b * C * I[C_H] * W + (size_t)iy * W;
        uint8_t *dst = row + (size_t)I[C_PL] * Cp;
        size_t hw = (size_t)I[C_H] * W;
        if (C == 3 && Cp == 4) {             /* RGB: a pixel is one 32-bit word, built in vector registers */
            uint8_t *t0 = tmp, *t1 = tmp + 1024, *t2 = tmp + 2048;
            for (int ix0 = 0; ix0 < W; ix0 += 1024) {
                int n = W - ix0 < 1024 ? W - ix0 : 1024;
                quant(plane + ix0, t0, n, inv, zp);
                quant(plane + hw + ix0, t1, n, inv, zp);
                quant(plane + 2 * hw + ix0, t2, n, inv, zp);
                uint32_t *px = (uint32_t *)(dst + (size_t)ix0 * 4);      /* 4-byte aligned: rows of 4-byte pixels */
                for (int k = 0; k < n; k++)
                    px[k] = t0[k] | (uint32_t)t1[k] << 8 | (uint32_t)t2[k] << 16 | (uint32_t)zp << 24;
            }
            return;
        }
        for (int q = 0; q < C; q++)
            for (int ix0 = 0; ix0 < W; ix0 += (int)sizeof tmp) {
                int n = W - ix0 < (int)sizeof tmp ? W - ix0 : (int)sizeof tmp;
                quant(plane + (size_t)q * I[C_H] * W + ix0, tmp, n, inv, zp);
                for (int k = 0; k < n; k++) dst[(size_t)(ix0 + k) * Cp + q] = tmp[k];
            }
        return;
    }
    const float *x = (const float *)c->op->b[B_X] + (((size_t)b * I[C_H] + iy) * W) * C;
    if (C == Cp) {                           /* the row's pixels are contiguous on both sides: one call */
        quant(x, row + (size_t)I[C_PL] * Cp, W * C, inv, zp);
        return;
    }
    /* channels padded (e.g. 3 -> 4): quantize runs of pixels contiguously, then spread them out */
    int per = (int)sizeof tmp / C;
    if (per < 1) {                           /* a pixel wider than tmp (over 4096 channels): one at a time */
        for (int ix = 0; ix < W; ix++) {
            uint8_t *dst = row + (size_t)(ix + I[C_PL]) * Cp;
            quant(x + (size_t)ix * C, dst, C, inv, zp);
        }
        return;
    }
    for (int ix0 = 0; ix0 < W; ix0 += per) {
        int n = W - ix0 < per ? W - ix0 : per;
        quant(x + (size_t)ix0 * C, tmp, n * C, inv, zp);
        uint8_t *dst = row + (size_t)(ix0 + I[C_PL]) * Cp;
        for (int k = 0; k < n; k++)                   /* a byte loop: a memcpy call per 3-byte pixel cost more */
            for (int q = 0; q < C; q++) dst[(size_t)k * Cp + q] = tmp[(size_t)k * C + q];
    }
}

/* A conv fused with the 2x2 stride-2 maxpool after it (field pool): its task computes two conv rows at a
 * time into a scratch block that stays in cache and writes only their pooled row, so the full-size conv
 * output (11 MB for yolov2-tiny's first layer) is never written nor read back. Same comparisons in the same
 * order as the maxpool op, so the result is the same to the bit. row0: two conv rows of Wo pixels x N. */
TN_CLONES static void pool_row(const tn_op *op, const float *row0, float *o, int n0, int n1) {
    int Wo = op->i[C_WO], N = op->i[C_N];
    const float *row1 = row0 + (size_t)Wo * N;
    for (int px = 0; px < Wo / 2; px++)
        for (int n = n0; n < n1; n++) {
            float v = -FLT_MAX, x;
            x = row0[(size_t)(2 * px) * N + n]; v = x > v ? x : v;
            x = row0[(size_t)(2 * px + 1) * N + n]; v = x > v ? x : v;
            x = row1[(size_t)(2 * px) * N + n]; v = x > v ? x : v;
            x = row1[(size_t)(2 * px + 1) * N + n]; v = x > v ? x : v;
            o[(size_t)px * N + n] = v;
        }
}

/* A conv whose only reader is an int8 conv with a calibrated input scale (field quantized_out) writes its
 * output (pooled, if fused) straight into that conv's padded u8 input, quantized as the reader's own pass
 * would (the same function, scale and zero point: the same bytes), so the float output never goes out to
 * memory and the reader skips its quantize pass (x_quantized). One output row of w pixels, channels n0..n1,
 * from floats row[x·ld + n] (a task's scratch, still in cache). */
static void quant_row(const tn_op *op, int isa, const float *row, int ld, int b, int oy, int w, int n0, int n1) {
    const int *I = op->i;
    int N = I[C_N], Cp = I[C_QCP];
    uint8_t *dst = (uint8_t *)op->b[B_OUT] + (((size_t)b * I[C_QHP] + oy + I[C_QPT]) * I[C_QWP] + I[C_QPL]) * Cp;
    float inv = 1.f / op->f[1];
    tn_quant_fn quant = tn_isa_table[isa].quant;
    if (n0 == 0 && n1 == N && N == Cp && ld == N) {
        quant(row, dst, w * N, inv, I[C_QZP]);
        return;
    }
    for (int x = 0; x < w; x++) quant(row + (size_t)x * ld + n0, dst + (size_t)x * Cp + n0, n1 - n0, inv, I[C_QZP]);
}

/* The reader's padding (rows, columns, and channels beyond N) holds its zero point: one task a padded row */
static void qborder_task(void *p, int t) {
    const conv_ctx *c = p; const int *I = c->op->i;
    int Hq = I[C_QHP], y = t % Hq, Wq = I[C_QWP], Cp = I[C_QCP], N = I[C_N], pool = I[C_POOL] ? 2 : 1;
    int ho = I[C_M] / I[C_WO] / pool, wo = I[C_WO] / pool;
    uint8_t zp = (uint8_t)I[C_QZP], *row = (uint8_t *)c->op->b[B_OUT] + (size_t)t * Wq * Cp;
    if (y < I[C_QPT] || y >= I[C_QPT] + ho) {
        memset(row, zp, (size_t)Wq * Cp);
        return;
    }
    memset(row, zp, (size_t)I[C_QPL] * Cp);
    memset(row + (size_t)(I[C_QPL] + wo) * Cp, zp, (size_t)(Wq - I[C_QPL] - wo) * Cp);
    if (Cp > N)
        for (int x = I[C_QPL]; x < I[C_QPL] + wo; x++) memset(row + (size_t)x * Cp + N, zp, (size_t)(Cp - N));
}

/* One GEMM call of a task. Weights at 2 bits (weights_2bit) go to the ISA's 2-bit kernel where it has one;
 * otherwise the task's blocks are expanded to int8 for the int8 kernel (tn_w2_as_int8) and freed after. */
static void gemm(const conv_ctx *c, const tn_gemm_args *g, int m0, int m1, int nb0, int nb1) {
    const tn_kernels *k = &tn_isa_table[c->isa];
    if (c->op->code == OP_CONV_TT) { k->tt(g, m0, m1, nb0, nb1); return; }
    if (!c->op->i[C_W2]) { k->t8(g, m0, m1, nb0, nb1); return; }
    if (k->t8w2 && k->t8w2(g, m0, m1, nb0, nb1) == 0) return;
    int8_t *buf = malloc(TN_W2_INT8_BYTES(g, nb1 - nb0));
    if (!buf) return;
    tn_gemm_args e;
    tn_w2_as_int8(g, nb0, nb1, buf, &e);
    k->t8(&e, m0, m1, nb0, nb1);
    free(buf);
}

/* A task's float rows for the quantized output, kept per thread (the pool's threads live as long as the
 * process) and on a cache line: a malloc each task gave 16-byte alignment, so every 64-byte row store of the
 * epilogue crossed two lines (ResNet-20's 32x32 convs took a quarter longer than their residual twins). */
static __thread float *task_rows;
static __thread size_t task_rows_cap;
static float *task_floats(size_t n) {
    if (n > task_rows_cap) {
        free(task_rows);
        task_rows = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
        task_rows_cap = task_rows ? n : 0;
    }
    return task_rows;
}

static void gemm_task(void *p, int t) {
    conv_ctx *c = p; const int *I = c->op->i;
    int per_img = c->mtasks * c->ntasks, b = t / per_img, r = t % per_img, mt = r / c->ntasks, nt = r % c->ntasks;
    int units = I[C_M] / c->munit;                     /* pixel ranges are whole units (pool: two conv rows) */
    int m0 = (int)((long)units * mt / c->mtasks) * c->munit, m1 = (int)((long)units * (mt + 1) / c->mtasks) * c->munit;
    int nb0 = nt * c->nbper, nb1 = nb0 + c->nbper < I[C_NB] ? nb0 + c->nbper : I[C_NB];
    if (m0 >= m1 || nb0 >= nb1) return;
    if (!I[C_POOL] && !I[C_QOUT]) {
        gemm(c, &c->args[b], m0, m1, nb0, nb1);
        return;
    }
    int N = I[C_N], bw = c->op->code == OP_CONV_TT ? 8 : 16, n0 = nb0 * bw, n1 = nb1 * bw < N ? nb1 * bw : N;
    int Wo = I[C_WO], rows = c->munit, qout = I[C_QOUT];
    if (!I[C_POOL]) {          /* quantized output: the task's whole rows in one GEMM call (weights read once) */
        /* out[(m - m0)·ld + n] with n in n0..n1 and ld = n1 - n0: the first n0 floats are never touched */
        int ld = n1 - n0;
        float *all = task_floats((size_t)(m1 - m0) * ld + n0);
        if (!all) return;
        tn_gemm_args a = c->args[b];
        a.out = all;
        a.ldo = ld;
        a.m_base = m0;
        gemm(c, &a, m0, m1, nb0, nb1);
        for (int m = m0; m < m1; m += Wo)
            quant_row(c->op, c->isa, all + (size_t)(m - m0) * ld, ld, b, m / Wo, Wo, n0, n1);
        return;
    }
    /* scratch: the conv rows of one unit, then (pool and quantized output) their pooled row */
    size_t need = (size_t)rows * N + (I[C_POOL] && qout ? (size_t)(Wo / 2) * N : 0);
    float stack[4096] __attribute__((aligned(64))), *scr = need <= 4096 ? stack : malloc(sizeof(float) * need);
    if (!scr) return;                                  /* (never on a real machine: a few hundred KB at most) */
    float *pooled = scr + (size_t)rows * N;
    tn_gemm_args a = c->args[b];
    a.out = scr;
    tn_gemm_pool_fn fused = c->op->code == OP_CONV_T8 ? tn_isa_table[c->isa].t8pool : NULL;
    for (int m = m0; m < m1; m += rows) {
        if (fused) {          /* the kernel pools its own tiles: the pooled row straight out */
            int Hq = I[C_M] / Wo / 2;
            tn_gemm_args p = c->args[b];
            p.pool_wo = Wo;
            p.ldo = N;
            p.out = qout ? pooled : (float *)c->op->b[B_OUT] + (((size_t)b * Hq + m / Wo / 2) * (Wo / 2)) * N;
            if (fused(&p, m, m + rows, nb0, nb1, I[C_W2]) == 0) {
                if (qout) quant_row(c->op, c->isa, pooled, N, b, m / Wo / 2, Wo / 2, n0, n1);
                continue;
            }
        }
        a.m_base = m;
        gemm(c, &a, m, m + rows, nb0, nb1);
        if (qout) {
            pool_row(c->op, scr, pooled, n0, n1);
            quant_row(c->op, c->isa, pooled, N, b, m / Wo / 2, Wo / 2, n0, n1);
        } else {
            int Hq = I[C_M] / Wo / 2;
            pool_row(c->op, scr, (float *)c->op->b[B_OUT] + (((size_t)b * Hq + m / Wo / 2) * (Wo / 2)) * N, n0, n1);
        }
    }
    if (scr != stack) free(scr);
}

/* Tasks = images x pixel ranges x channel ranges. Channels are split in groups of 4 blocks (the AVX-512
 * tile's 64 channels), so each weight byte is read once per pixel range; pixels are split into ranges of at
 * most 4096 (a multiple of every tile height) so that large layers still balance across threads. The groups
 * per task are chosen so that no thread gets more than its share: 64 blocks in tasks of 12, 12, 12, 12, 12, 4
 * leave one of two threads 36 blocks and the other 28 (a 13x13 layer of yolov2-tiny ran 11% over its
 * 1-thread time / 2); tasks of 8 split them 32 / 32. */
static void split_gemm(conv_ctx *c, int B, int M, int NB) {
    /* pixel ranges are whole units: two conv rows (pool), one row (quantized output), else a pixel */
    c->munit = c->op->i[C_POOL] ? 2 * c->op->i[C_WO] : c->op->i[C_QOUT] ? c->op->i[C_WO] : 1;
    int T = tn_get_threads(), want = 3 * T, groups = (NB + 3) / 4;
    int per_img = (want + B - 1) / B, first = per_img < groups ? per_img : groups;
    int rows = (M + 4095) / 4096, more = (per_img + first - 1) / first, cap = (M + 59) / 60;
    c->mtasks = rows > more ? rows : more;
    if (c->mtasks > cap) c->mtasks = cap;
    if (c->mtasks > M / c->munit) c->mtasks = M / c->munit;
    /* compared in order: the busiest thread's load, whether there are fewer than `want` tasks, how far from
     * `want` the task count is */
    long R = (long)B * c->mtasks, best_key[3] = {0, 0, 0};
    int best = 1;
    for (int gper = 1; gper <= groups; gper++) {
        long total = R * ((groups + gper - 1) / gper);
        long key[3] = {(total + T - 1) / T * gper, total < want, total < want ? want - total : total - want};
        int i = 0;
        while (i < 2 && key[i] == best_key[i]) i++;
        if (gper == 1 || key[i] < best_key[i]) { best = gper; memcpy(best_key, key, sizeof key); }
    }
    c->nbper = 4 * best;
    c->ntasks = (NB + c->nbper - 1) / c->nbper;
}

/* 2'. STTN's ternary activations as 8-bit codes for the int8 GEMM (ternary_input): t = a·x + b, u = 1 + [t >= .5]
 * - [t < -.5], so u - 1 (zero point 1, scale 1) is the ternary value and the integer sums are the popcount
 * path's; padding is 1 (zero). The same float operations as tn_tact_bits_*. The channels are a multiple of 8
 * (no channel padding), so a row is one flat run, and a and b come tiled over the row's pixels (plan.py). */
static void tquant_task(void *p, int t) {
    conv_ctx *c = p; const int *I = c->op->i;
    int b = t / I[C_HP], y = t % I[C_HP], iy = y - I[C_PT], W = I[C_W], C = I[C_C], Wp = I[C_WP];
    uint8_t *row = (uint8_t *)c->op->b[B_Q] + ((size_t)b * I[C_HP] + y) * Wp * C;
    if (iy < 0 || iy >= I[C_H]) { memset(row, 1, (size_t)Wp * C); return; }
    memset(row, 1, (size_t)I[C_PL] * C);
    memset(row + (size_t)(I[C_PL] + W) * C, 1, (size_t)(Wp - I[C_PL] - W) * C);
    const float *x = (const float *)c->op->b[B_X] + (((size_t)b * I[C_H] + iy) * W) * C;
    const float *A = (const float *)c->op->b[B_AFF_A], *Bv = (const float *)c->op->b[B_AFF_B];
    uint8_t *dst = row + (size_t)I[C_PL] * C;
    tn_isa_table[c->isa].tcode(x, A, Bv, (size_t)W * C, dst);
}

static void fill_args(tn_gemm_args *g, const tn_op *op, int b, const float *scale, int zp) {
    const int *I = op->i;
    memset(g, 0, sizeof *g);
    g->pix = (const int32_t *)op->b[B_PIX]; g->seg = (const int32_t *)op->b[B_SEG];
    g->S = I[C_S]; g->L = I[C_L]; g->w = op->b[B_W]; g->N = I[C_N]; g->KW = I[C_KW];
    g->wsum = (const int32_t *)op->b[B_WSUM]; g->zp = zp; g->scale = scale; g->bias = (const float *)op->b[B_BIAS];
    g->act = I[C_ACT]; g->prelu = (const float *)op->b[B_PRELU];
    g->out = (float *)op->b[B_OUT] + (size_t)b * I[C_M] * I[C_N]; g->ldo = I[C_N];
    if (I[C_RES]) {
        g->res = (const float *)op->b[B_RES] + (size_t)b * I[C_RESIMG];
        g->res_pix = (const int32_t *)op->b[B_RESPIX]; g->res_c = I[C_RESC]; g->res_off = I[C_RESOFF];
    }
}

static void conv_t8(const tn_op *op, int isa) {
    const int *I = op->i;
    serial_op = conv_is_small(I, (double)I[C_S] * I[C_L], isa);   /* kh rows of kw·cp */
    int B = I[C_B], N = I[C_N];
    conv_ctx c = {op, isa};
    float *scr = (float *)op->b[B_SCR];                 /* [B][N] scales, then B zps, B input scales */
    int *zp = (int *)(scr + (size_t)B * N);
    float *asc = (float *)(zp + B);
    if (I[C_TIN]) {                                    /* ternary codes: zero point 1, scale 1 */
        for (int b = 0; b < B; b++) { zp[b] = 1; asc[b] = 1.f; }
    } else if (I[C_FIXQ]) {
        for (int b = 0; b < B; b++) { zp[b] = I[C_FIXZP]; asc[b] = op->f[0]; }
    } else {
        int chunks = tn_get_threads() > 1 ? 2 * tn_get_threads() : 1;
        float mm[2 * 64 * 128];
        if (B * chunks > 64 * 128) chunks = 1;
        c.mm = mm; c.chunks = chunks;
        par(B * chunks, minmax_task, &c);
        for (int b = 0; b < B; b++) {
            float mn = 0.f, mx = 0.f;
            for (int k = 0; k < chunks; k++) {
                mn = fminf(mn, mm[2 * (b * chunks + k)]); mx = fmaxf(mx, mm[2 * (b * chunks + k) + 1]);
            }
            float s = (mx - mn) / 255.f;
            if (!(s > 0.f) || !isfinite(s)) s = 1.f;
            int z = (int)lrintf(-mn / s);
            zp[b] = z < 0 ? 0 : z > 255 ? 255 : z;
            asc[b] = s;
        }
    }
    for (int b = 0; b < B; b++)
        for (int n = 0; n < N; n++) scr[(size_t)b * N + n] = asc[b] * ((const float *)op->b[B_WSCALE])[n];
    c.sc = asc; c.zp = zp;
    if (!I[C_XQ]) par(B * I[C_HP], I[C_TIN] ? tquant_task : quant_task, &c);  /* else the conv before wrote q */
    if (I[C_QOUT]) par(B * I[C_QHP], qborder_task, &c);
    tn_gemm_args args[B];
    static unsigned long calls;                        /* plans of two Nets may run at once: atomic */
    unsigned long gen = __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
    for (int b = 0; b < B; b++) {
        fill_args(&args[b], op, b, scr + (size_t)b * N, zp[b]);
        args[b].gen = gen;
        args[b].a = (const uint8_t *)op->b[B_Q] + (size_t)b * I[C_HP] * I[C_WP] * I[C_CP];
        /* the images after b, then the slack, may be read past a segment (kernels_amx.c) */
        args[b].a_len = (size_t)(B - b) * I[C_HP] * I[C_WP] * I[C_CP] + (size_t)I[C_QSLACK];
    }
    c.args = args;
    split_gemm(&c, B, I[C_M], I[C_NB]);
    par(B * c.mtasks * c.ntasks, gemm_task, &c);
}

/* ---- popcount conv: ternarize (t = a·x + b; +1 if t >= .5, -1 if t < -.5) into bit planes, im2col, GEMM */
TN_CLONES static void tact_task(void *p, int t) {
    conv_ctx *c = p; const tn_op *op = c->op; const int *I = op->i;
    int b = t / I[C_HP], y = t % I[C_HP], iy = y - I[C_PT], W = I[C_W], C = I[C_C], CB = C / 8, Wp = I[C_WP];
    uint8_t *row = (uint8_t *)op->b[B_Q] + ((size_t)b * I[C_HP] + y) * Wp * 2 * CB;
    memset(row, 0, (size_t)Wp * 2 * CB);
    if (iy < 0 || iy >= I[C_H]) return;
    const float *x = (const float *)op->b[B_X] + (((size_t)b * I[C_H] + iy) * W) * C;
    const float *A = (const float *)op->b[B_AFF_A], *Bv = (const float *)op->b[B_AFF_B];
    tn_tact_fn tact = tn_isa_table[c->isa].tact;
    for (int ix = 0; ix < W; ix++) {
        uint8_t *nz = row + (size_t)(ix + I[C_PL]) * 2 * CB;
        tact(x + (size_t)ix * C, A, Bv, C, nz, nz + CB);
    }
}

/* Pixel m's row of the bit-plane im2col: the S taps' CB bytes of each plane side by side, zeros after them to
 * the word boundary (the last word is cleared first; the taps then overwrite its used part). Inlined with a
 * constant CB for the usual channel counts (16, 32, 64), so every tap is one fixed-size load and store. */
static inline __attribute__((always_inline)) void im2bits_rows(const conv_ctx *c, int b, int m0, int m1, int CB) {
    const tn_op *op = c->op; const int *I = op->i;
    int M = I[C_M], KW = I[C_KW], S = I[C_S];
    const uint8_t *img = (const uint8_t *)op->b[B_Q] + (size_t)b * I[C_HP] * I[C_WP] * 2 * CB;
    const int32_t *pix = (const int32_t *)op->b[B_PIX], *seg = (const int32_t *)op->b[B_SEG];
    const uint64_t zero = 0;
    for (int m = m0; m < m1; m++) {
        uint8_t *nz = (uint8_t *)op->b[B_A] + ((size_t)b * M + m) * 2 * KW * 8, *sg = nz + (size_t)KW * 8;
        memcpy(nz + (size_t)(KW - 1) * 8, &zero, 8);
        memcpy(sg + (size_t)(KW - 1) * 8, &zero, 8);
        const uint8_t *base = img + (size_t)pix[m] * 2 * CB;
        for (int s = 0; s < S; s++) {
            const uint8_t *src = base + (size_t)seg[s] * 2 * CB;
            memcpy(nz + s * CB, src, CB);
            memcpy(sg + s * CB, src + CB, CB);
        }
    }
}

static void im2bits_task(void *p, int t) {
    const conv_ctx *c = p; const int *I = c->op->i;
    int M = I[C_M], CB = I[C_C] / 8;
    int b = t / ((M + 63) / 64), m0 = (t % ((M + 63) / 64)) * 64, m1 = m0 + 64 < M ? m0 + 64 : M;
    switch (CB) {
    case 2: im2bits_rows(c, b, m0, m1, 2); break;
    case 4: im2bits_rows(c, b, m0, m1, 4); break;
    case 8: im2bits_rows(c, b, m0, m1, 8); break;
    default: im2bits_rows(c, b, m0, m1, CB);
    }
}

static void conv_tt(const tn_op *op, int isa) {
    const int *I = op->i;
    serial_op = conv_is_small(I, (double)I[C_S] * I[C_C], isa);   /* kh·kw taps of C */
    int B = I[C_B], M = I[C_M];
    conv_ctx c = {op, isa};
    par(B * I[C_HP], tact_task, &c);
    par(B * ((M + 63) / 64), im2bits_task, &c);
    tn_gemm_args args[B];
    for (int b = 0; b < B; b++) {
        fill_args(&args[b], op, b, (const float *)op->b[B_WSCALE], 0);
        args[b].a = (const uint8_t *)op->b[B_A] + (size_t)b * M * 2 * I[C_KW] * 8;
    }
    c.args = args;
    if (I[C_QOUT]) par(B * I[C_QHP], qborder_task, &c);
    split_gemm(&c, B, M, I[C_NB]);
    par(B * c.mtasks * c.ntasks, gemm_task, &c);
}

/* ---- float conv (layers kept float): padded copy, then out[m][n] = Σ x·w over w laid out [S·C][N] */
static void fpad_task(void *p, int t) {
    conv_ctx *c = p; const tn_op *op = c->op; const int *I = op->i;
    int b = t / I[C_HP], y = t % I[C_HP], iy = y - I[C_PT], W = I[C_W], C = I[C_C], Wp = I[C_WP];
    float *row = (float *)op->b[B_Q] + ((size_t)b * I[C_HP] + y) * Wp * C;
    memset(row, 0, sizeof(float) * (size_t)Wp * C);
    if (iy < 0 || iy >= I[C_H]) return;
    if (I[C_PLANAR]) {                       /* the network's input, NCHW */
        const float *plane = (const float *)op->b[B_X] + (size_t)b * C * I[C_H] * W + (size_t)iy * W;
        float *dst = row + (size_t)I[C_PL] * C;
        for (int q = 0; q < C; q++)
            for (int ix = 0; ix < W; ix++) dst[(size_t)ix * C + q] = plane[(size_t)q * I[C_H] * W + ix];
        return;
    }
    memcpy(row + (size_t)I[C_PL] * C, (const float *)op->b[B_X] + ((size_t)b * I[C_H] + iy) * W * C,
           sizeof(float) * (size_t)W * C);
}

/* The float conv's weights are slabs of 16 output channels, [N16/16][K][16] with K = S·L (plan.py, zero
 * channels padding the last slab): a block of FP pixels x 16 channels keeps its sums in registers (locals with
 * fixed bounds, so the compiler vectorizes them) while one slab streams by contiguously. Each sum is still taken
 * in (tap, channel) order, one multiply then one add (-ffp-contract=off): the same bits as a plain loop. */
#define FP 4
#define FN 16
typedef float tn_v16 __attribute__((vector_size(64)));   /* GCC/clang vectors: one zmm, two ymm, four q */

static inline void fgemm_block(const float *x, const int32_t *pix, const int32_t *seg, const float *slab, int S,
                               int L, int m, int np, float acc[FP][FN]) {
    const float *wr = slab;
    if (np == FP) {
        tn_v16 r[FP] = {{0}};
        for (int s = 0; s < S; s++) {
            const float *x0 = x + pix[m] + seg[s], *x1 = x + pix[m + 1] + seg[s];
            const float *x2 = x + pix[m + 2] + seg[s], *x3 = x + pix[m + 3] + seg[s];
            for (int ch = 0; ch < L; ch++, wr += FN) {
                tn_v16 w;                                /* memcpy: an unaligned load, no vector passed by value */
                memcpy(&w, wr, sizeof w);
                r[0] += x0[ch] * w; r[1] += x1[ch] * w; r[2] += x2[ch] * w; r[3] += x3[ch] * w;
            }
        }
        memcpy(acc, r, sizeof r);
        return;
    }
    memset(acc, 0, sizeof(float) * FP * FN);             /* the task's last 1-3 pixels */
    for (int s = 0; s < S; s++)
        for (int ch = 0; ch < L; ch++, wr += FN)
            for (int i = 0; i < np; i++) {
                const float a = x[pix[m + i] + seg[s] + ch];
                for (int j = 0; j < FN; j++) acc[i][j] += a * wr[j];
            }
}

/* One pixel's FN sums -> bias, residual, activation -> o[n0..n0+nn). A whole block with the residual all in or
 * all out and a piecewise-linear activation runs as fixed-length loops the compiler vectorizes; the rest goes
 * element by element. The same float operations in the same order either way. */
static inline __attribute__((always_inline)) void fconv_out(float *o, const float *acc, const float *bias,
                                                            const float *res, const int *I, const float *prelu,
                                                            int n0, int nn) {
    int off = I[C_RESOFF], rc = I[C_RESC], act = I[C_ACT];
    int res_all = res && n0 >= off && n0 + FN <= off + rc, res_none = !res || n0 >= off + rc || n0 + FN <= off;
    if (nn == FN && (res_all || res_none) && act <= TN_ACT_PRELU) {
        float v[FN];
        o += n0; bias += n0;
        for (int j = 0; j < FN; j++) v[j] = acc[j] + bias[j];
        if (res_all)
            for (int j = 0; j < FN; j++) v[j] += res[n0 - off + j];
        switch (act) {
        case TN_ACT_RELU: for (int j = 0; j < FN; j++) o[j] = v[j] > 0.f ? v[j] : 0.f; break;
        case TN_ACT_LEAKY: for (int j = 0; j < FN; j++) o[j] = v[j] > 0.f ? v[j] : 0.1f * v[j]; break;
        case TN_ACT_PRELU: for (int j = 0; j < FN; j++) o[j] = v[j] > 0.f ? v[j] : prelu[n0 + j] * v[j]; break;
        default: for (int j = 0; j < FN; j++) o[j] = v[j];
        }
        return;
    }
    for (int j = 0; j < nn; j++) {
        int n = n0 + j;
        float v = acc[j] + bias[n];
        if (res && n >= off && n < off + rc) v += res[n - off];
        o[n] = tn_act(act, v, prelu, n);
    }
}

TN_CLONES_512 static void fgemm_task(void *p, int t) {
    conv_ctx *c = p; const tn_op *op = c->op; const int *I = op->i;
    int M = I[C_M], N = I[C_N], L = I[C_L], S = I[C_S], tasks = (M + 15) / 16;
    int b = t / tasks, m0 = (t % tasks) * 16, m1 = m0 + 16 < M ? m0 + 16 : M;
    const float *x = (const float *)op->b[B_Q] + (size_t)b * I[C_HP] * I[C_WP] * I[C_C];
    const float *w = (const float *)op->b[B_W], *bias = (const float *)op->b[B_BIAS];
    const int32_t *pix = (const int32_t *)op->b[B_PIX], *seg = (const int32_t *)op->b[B_SEG];
    float acc[FP][FN];
    /* slabs outside, pixel blocks inside: a slab (K x 16 floats) stays in cache while the task's 16 pixels pass */
    for (int n0 = 0; n0 < N; n0 += FN) {
        const float *slab = w + (size_t)(n0 / FN) * S * L * FN;
        int nn = N - n0 < FN ? N - n0 : FN;
        for (int m = m0; m < m1; m += FP) {
            int np = m1 - m < FP ? m1 - m : FP;
            fgemm_block(x, pix, seg, slab, S, L, m, np, acc);
            for (int i = 0; i < np; i++) {
                float *o = (float *)op->b[B_OUT] + ((size_t)b * M + m + i) * N;
                const float *res = I[C_RES] ? (const float *)op->b[B_RES] + (size_t)b * I[C_RESIMG] +
                                              ((const int32_t *)op->b[B_RESPIX])[m + i] : NULL;
                fconv_out(o, acc[i], bias, res, I, (const float *)op->b[B_PRELU], n0, nn);
            }
        }
    }
}
#undef FP
#undef FN

static void conv_f32(const tn_op *op) {
    const int *I = op->i;
    serial_op = conv_is_small(I, (double)I[C_S] * I[C_L], TN_ISA_SERIAL);   /* vector code, no AMX tiles */
    conv_ctx c = {op, 0};
    par(I[C_B] * I[C_HP], fpad_task, &c);
    par(I[C_B] * ((I[C_M] + 15) / 16), fgemm_task, &c);
}

/* ---- the other ops: one task per (image, output row) or per image */
TN_CLONES static void maxpool_task(void *p, int t) {   /* i: B H W C Ho Wo size stride pad_t pad_l; darknet placement */
    const tn_op *op = p; const int *I = op->i;
    int H = I[1], W = I[2], C = I[3], Ho = I[4], Wo = I[5], k = I[6], s = I[7];
    int b = t / Ho, oy = t % Ho;
    const float *x = (const float *)op->b[0] + (size_t)b * H * W * C;
    float *o = (float *)op->b[1] + (((size_t)b * Ho + oy) * Wo) * C;
    int y0 = oy * s - I[8], y1 = y0 + k;                   /* the window, clipped to the image once */
    if (y0 < 0) y0 = 0;
    if (y1 > H) y1 = H;
    for (int ox = 0; ox < Wo; ox++, o += C) {
        float *restrict out = o;
        int x0 = ox * s - I[9], x1 = x0 + k;
        if (x0 < 0) x0 = 0;
        if (x1 > W) x1 = W;
        for (int ch = 0; ch < C; ch++) out[ch] = -FLT_MAX;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) {
                const float *restrict v = x + ((size_t)iy * W + ix) * C;
                for (int ch = 0; ch < C; ch++) out[ch] = v[ch] > out[ch] ? v[ch] : out[ch];
            }
    }
}

static void avgpool_task(void *p, int b) {   /* i: B H W C */
    const tn_op *op = p; const int *I = op->i;
    size_t P = (size_t)I[1] * I[2]; int C = I[3];
    const float *x = (const float *)op->b[0] + b * P * C;
    float *o = (float *)op->b[1] + (size_t)b * C;
    for (int ch = 0; ch < C; ch++) o[ch] = 0.f;
    for (size_t q = 0; q < P; q++)
        for (int ch = 0; ch < C; ch++) o[ch] += x[q * C + ch];
    for (int ch = 0; ch < C; ch++) o[ch] /= (float)P;
}

static void concat_task(void *p, int b) {    /* i: B P nin Cout C0 C1 ...; b: out in0 in1 ... */
    const tn_op *op = p; const int *I = op->i;
    size_t P = I[1]; int nin = I[2], Co = I[3], off = 0;
    for (int k = 0; k < nin; k++) {
        int C = I[4 + k];
        const float *x = (const float *)op->b[1 + k] + b * P * C;
        float *o = (float *)op->b[0] + b * P * Co + off;
        for (size_t q = 0; q < P; q++) memcpy(o + q * Co, x + q * C, sizeof(float) * C);
        off += C;
    }
}

static void add_task(void *p, int t) {       /* i: n_total act chunks; f: alpha beta; b: a x out */
    const tn_op *op = p; const int *I = op->i;
    size_t n = I[0], lo = n * t / I[2], hi = n * (t + 1) / I[2];
    const float *a = op->b[0], *x = op->b[1];
    float *o = op->b[2];
    for (size_t j = lo; j < hi; j++) o[j] = tn_act(I[1], op->f[0] * a[j] + op->f[1] * x[j], NULL, 0);
}

static void upsample_task(void *p, int t) {  /* i: B H W C s; f: scale */
    const tn_op *op = p; const int *I = op->i;
    int H = I[1], W = I[2], C = I[3], s = I[4], b = t / (H * s), oy = t % (H * s);
    const float *x = (const float *)op->b[0] + (((size_t)b * H + oy / s) * W) * C;
    float *o = (float *)op->b[1] + (((size_t)b * H * s + oy) * W * s) * C;
    for (int ox = 0; ox < W * s; ox++)
        for (int ch = 0; ch < C; ch++) o[(size_t)ox * C + ch] = x[(size_t)(ox / s) * C + ch] * op->f[0];
}

static void gather_task(void *p, int b) {    /* i: B n_out n_in; b: x idx out */
    const tn_op *op = p; const int *I = op->i;
    const float *x = (const float *)op->b[0] + (size_t)b * I[2];
    const int32_t *idx = op->b[1];
    float *o = (float *)op->b[2] + (size_t)b * I[1];
    for (int j = 0; j < I[1]; j++) o[j] = x[idx[j]];
}

static void linear_task(void *p, int b) {    /* i: B K N act; b: x w[N][K] bias out */
    const tn_op *op = p; const int *I = op->i;
    int K = I[1], N = I[2];
    const float *x = (const float *)op->b[0] + (size_t)b * K, *w = op->b[1], *bias = op->b[2];
    float *o = (float *)op->b[3] + (size_t)b * N;
    for (int n = 0; n < N; n++) {
        float s = 0.f;
        for (int k = 0; k < K; k++) s += w[(size_t)n * K + k] * x[k];
        o[n] = tn_act(I[3], s + bias[n], NULL, 0);
    }
}

static void act_task(void *p, int t) {       /* i: n_total act chunks; b: x out */
    const tn_op *op = p; const int *I = op->i;
    size_t n = I[0], lo = n * t / I[2], hi = n * (t + 1) / I[2];
    const float *x = op->b[0];
    float *o = op->b[1];
    for (size_t j = lo; j < hi; j++) o[j] = tn_act(I[1], x[j], NULL, 0);
}

static void slice_task(void *p, int b) {     /* i: B P C start Cout; b: x out: channels [start, start+Cout) */
    const tn_op *op = p; const int *I = op->i;
    size_t P = I[1]; int C = I[2], start = I[3], Co = I[4];
    const float *x = (const float *)op->b[0] + b * P * C + start;
    float *o = (float *)op->b[1] + b * P * Co;
    for (size_t q = 0; q < P; q++) memcpy(o + q * Co, x + q * C, sizeof(float) * Co);
}

/* grouped / depthwise conv (i: B H W C Ho Wo N kh kw stride pad_t pad_l groups act; b: x w scale bias out):
 * one task per (image, output row), the ISA's row kernel (kernels_serial.c is the reference) */
typedef struct { tn_gconv_args a; tn_gconv_fn fn; } gconv_ctx;

static void gconv_task(void *p, int t) {
    gconv_ctx *c = p;
    c->fn(&c->a, t / c->a.Ho, t % c->a.Ho);
}

static void conv_grouped(const tn_op *op, int isa) {
    const int *I = op->i;
    int groups = I[12];
    gconv_ctx c = {{(const float *)op->b[0], I[1], I[2], I[3], (const float *)op->b[1], I[6], I[3] / groups,
                    I[6] / groups, I[7], I[8], I[9], I[10], I[11], (const float *)op->b[2], (const float *)op->b[3],
                    I[13], (float *)op->b[4], I[4], I[5]},
                   tn_isa_table[isa].gconv ? tn_isa_table[isa].gconv : tn_gconv_row_serial};
    tn_parallel(I[0] * I[4], gconv_task, &c);
}

static void scale_channels_task(void *p, int b) {   /* i: B P C act; b: x s out: out = act(x·s[c]) */
    const tn_op *op = p; const int *I = op->i;
    size_t P = I[1]; int C = I[2];
    const float *x = (const float *)op->b[0] + b * P * C, *s = (const float *)op->b[1] + (size_t)b * C;
    float *o = (float *)op->b[2] + b * P * C;
    for (size_t q = 0; q < P; q++)
        for (int ch = 0; ch < C; ch++) o[q * C + ch] = tn_act(I[3], x[q * C + ch] * s[ch], NULL, 0);
}

/* AlexeyAB's multi-input shortcut (shortcut_multilayer_cpu), NHWC: out = act(w0·x + Σ_i w_i·in_i), in_i adding to
 * its first C_i channels only; w [inputs+1][C] (normalised at export), or all 1 when not weighted.
 * i: B P C n act weighted C_0 .. C_n-1; b: out x weights in0 .. */
static void shortcut_task(void *p, int b) {
    const tn_op *op = p; const int *I = op->i;
    size_t P = I[1]; int C = I[2], n = I[3], weighted = I[5];
    const float *x = (const float *)op->b[1] + b * P * C, *w = op->b[2];
    float *o = (float *)op->b[0] + b * P * C;
    for (size_t q = 0; q < P; q++)
        for (int ch = 0; ch < C; ch++) o[q * C + ch] = weighted ? x[q * C + ch] * w[ch] : x[q * C + ch];
    for (int i = 0; i < n; i++) {
        int Ci = I[6 + i], k = Ci < C ? Ci : C;
        const float *a = (const float *)op->b[3 + i] + b * P * Ci, *wi = weighted ? w + (size_t)(i + 1) * C : NULL;
        for (size_t q = 0; q < P; q++)
            for (int ch = 0; ch < k; ch++) o[q * C + ch] += weighted ? a[q * Ci + ch] * wi[ch] : a[q * Ci + ch];
    }
    for (size_t j = 0; j < P * C; j++) o[j] = tn_act(I[4], o[j], NULL, 0);
}

void tn_run_op(const tn_op *op, int isa) {
    void *p = (void *)op;
    const int *I = op->i;
    switch (op->code) {
    case OP_CONV_T8: conv_t8(op, isa); break;
    case OP_CONV_TT: conv_tt(op, isa); break;
    case OP_CONV_F32: conv_f32(op); break;
    case OP_MAXPOOL: tn_parallel(I[0] * I[4], maxpool_task, p); break;
    case OP_AVGPOOL: tn_parallel(I[0], avgpool_task, p); break;
    case OP_CONCAT: tn_parallel(I[0], concat_task, p); break;
    case OP_ADD: tn_parallel(I[2], add_task, p); break;
    case OP_UPSAMPLE: tn_parallel(I[0] * I[1] * I[4], upsample_task, p); break;
    case OP_GATHER: tn_parallel(I[0], gather_task, p); break;
    case OP_LINEAR: tn_parallel(I[0], linear_task, p); break;
    case OP_ACT: tn_parallel(I[2], act_task, p); break;
    case OP_SLICE: tn_parallel(I[0], slice_task, p); break;
    case OP_CONV_GROUPED: conv_grouped(op, isa); break;
    case OP_SCALE_CHANNELS: tn_parallel(I[0], scale_channels_task, p); break;
    case OP_SHORTCUT: tn_parallel(I[0], shortcut_task, p); break;
    }
}

/* ---- bounds: every size and index a plan hands in, checked once when the plan is made. The Python planner
 * builds plans only from verified models, but an op list is an interface of its own: a wrong int, a short
 * buffer or an index table pointing outside its buffer is refused here, never read past at run time. */
#include <stdarg.h>
#include <stdio.h>

typedef long long i64;

static int fail(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 200, fmt, ap);
    va_end(ap);
    return -1;
}

#define NEED(j, bytes) do { i64 need_ = (i64)(bytes); \
        if (!op->b[j] || (i64)len[j] < need_) \
            return fail(err, "buffer %s holds %lld bytes, needs %lld", buf_name(op, j), (i64)len[j], need_); } while (0)
#define REQUIRE(cond) do { if (!(cond)) return fail(err, "fields fail %s", #cond); } while (0)

static const char *buf_name(const tn_op *op, int j) {
    for (int i = 0; i < tn_op_count; i++)
        if (tn_op_table[i].code == op->code && tn_op_table[i].bufs[j]) return tn_op_table[i].bufs[j];
    return "?";
}

/* every value of an int32 table in [lo, hi]; its largest in *mx */
static int table_in(const tn_op *op, int j, i64 n, i64 lo, i64 hi, i64 *mx) {
    const int32_t *t = op->b[j];
    *mx = lo;
    for (i64 k = 0; k < n; k++) {
        if (t[k] < lo || t[k] > hi) return 0;
        if (t[k] > *mx) *mx = t[k];
    }
    return 1;
}

static int check_conv(const tn_op *op, const size_t *len, char *err) {
    const int *I = op->i;
    for (int k = C_B; k <= C_LAST; k++) REQUIRE(I[k] >= 0);
    REQUIRE(I[C_PLANAR] <= 1 && !(I[C_PLANAR] && op->code == OP_CONV_TT));   /* NCHW input: t8 and f32 only */
    i64 B = I[C_B], H = I[C_H], W = I[C_W], C = I[C_C], Hp = I[C_HP], Wp = I[C_WP], M = I[C_M], N = I[C_N],
        S = I[C_S], L = I[C_L], NB = I[C_NB];
    REQUIRE(B >= 1 && B <= 4096 && H >= 1 && W >= 1 && C >= 1 && M >= 1 && N >= 1 && S >= 1);
    REQUIRE(Hp >= H + I[C_PT] && Wp >= W + I[C_PL] && I[C_ACT] <= TN_ACT_LAST);
    REQUIRE(I[C_XQ] <= 1 && (!I[C_XQ] || (op->code == OP_CONV_T8 && I[C_FIXQ] && !I[C_PLANAR])));
    /* ternary activations into the int8 GEMM: their own quantizer, so no input scale, NCHW input or chaining */
    REQUIRE(I[C_TIN] <= 1 && (!I[C_TIN] || (op->code == OP_CONV_T8 && !I[C_FIXQ] && !I[C_PLANAR] && !I[C_XQ])));
    REQUIRE(I[C_W2] <= 1 && (!I[C_W2] || op->code == OP_CONV_T8));
    if (I[C_TIN]) { REQUIRE(I[C_CP] == C && C % 8 == 0); NEED(B_AFF_A, 4 * W * C); NEED(B_AFF_B, 4 * W * C); }
    if (!I[C_XQ]) NEED(B_X, 4 * B * H * W * C);
    REQUIRE(I[C_QOUT] <= 1 && (!I[C_QOUT] || op->code != OP_CONV_F32));
    if (I[C_QOUT]) {           /* the output quantized into the next conv's padded u8 input */
        i64 Wo = I[C_WO], pool = I[C_POOL] ? 2 : 1;
        REQUIRE(Wo >= 1 && M % (pool * Wo) == 0 && I[C_QZP] <= 255 && I[C_QCP] >= N);
        REQUIRE(op->f[1] > 0.f && isfinite(op->f[1]));
        REQUIRE(I[C_QHP] >= I[C_QPT] + M / Wo / pool && I[C_QWP] >= I[C_QPL] + Wo / pool);
        NEED(B_OUT, B * I[C_QHP] * I[C_QWP] * I[C_QCP]);
    }
    if (I[C_POOL]) {           /* fused 2x2/2 maxpool: whole pairs of conv rows, the pooled output */
        i64 Wo = I[C_WO];
        REQUIRE(I[C_POOL] == 1 && op->code != OP_CONV_F32 && Wo >= 2 && Wo % 2 == 0 && M % (2 * Wo) == 0);
        if (!I[C_QOUT]) NEED(B_OUT, 4 * B * (M / 4) * N);
    } else if (!I[C_QOUT]) {
        NEED(B_OUT, 4 * B * M * N);
    }
    NEED(B_BIAS, 4 * N);
    NEED(B_SCR, 4 * (B * N + 2 * B));
    if (I[C_ACT] == TN_ACT_PRELU) NEED(B_PRELU, 4 * N);
    if (I[C_RES]) {
        i64 rc = I[C_RESC], img = I[C_RESIMG], mx;
        REQUIRE(rc >= 1 && I[C_RESOFF] + rc <= N && img >= rc);
        NEED(B_RES, 4 * B * img);
        NEED(B_RESPIX, 4 * M);
        if (!table_in(op, B_RESPIX, M, 0, img - rc, &mx)) return fail(err, "residual pixel table out of range");
    }
    NEED(B_PIX, 4 * M);
    NEED(B_SEG, 4 * S);
    i64 px, sg, row;                                   /* the bytes (elements) of one padded image */
    if (op->code == OP_CONV_TT) {
        i64 CB = C / 8, KW = I[C_KW];
        REQUIRE(C % 8 == 0 && KW >= 1 && S * CB <= KW * 8 && (KW - 1) * 8 < S * CB && NB * 8 >= N);  /* im2bits */
        row = Hp * Wp;                                 /* pix and seg count pixels here */
        NEED(B_Q, B * row * 2 * CB);
        NEED(B_W, NB * KW * 2 * 8 * 8);
        NEED(B_WSCALE, 4 * N);
        NEED(B_A, B * M * 2 * KW * 8);
        NEED(B_AFF_A, 4 * C);
        NEED(B_AFF_B, 4 * C);
        L = 1;
    } else if (op->code == OP_CONV_T8) {
        i64 Cp = I[C_CP];
        REQUIRE(Cp >= C && Cp % 4 == 0 && (S * L) % 4 == 0 && NB * 16 >= N && I[C_FIXZP] >= 0 && I[C_FIXZP] <= 255);
        REQUIRE(!I[C_FIXQ] || (op->f[0] > 0.f && isfinite(op->f[0])));      /* the fixed input scale */
        row = Hp * Wp * Cp;
        REQUIRE(I[C_QSLACK] <= (1 << 24));
        NEED(B_Q, B * row + I[C_QSLACK]);
        if (I[C_W2]) NEED(B_W, NB * 4 * ((S * L + 63) / 64 * 64));      /* 2 bits, K padded to 64 (tn.h) */
        else NEED(B_W, NB * 16 * S * L + 1024);    /* + the zeros an AMX tile may read past K */
        NEED(B_WSUM, 4 * N);
        NEED(B_WSCALE, 4 * N);
    } else {
        REQUIRE(I[C_CP] == C);
        row = Hp * Wp * C;
        NEED(B_Q, 4 * B * row);
        NEED(B_W, 4 * S * L * ((N + 15) / 16 * 16));   /* slabs of 16 channels */
    }
    if (!table_in(op, B_PIX, M, 0, row, &px) || !table_in(op, B_SEG, S, 0, row, &sg) || px + sg + L > row)
        return fail(err, "pixel or segment table reads outside the padded input");
    return 0;
}

int tn_check_op(const tn_op *op, const size_t *len, char *err) {
    const int *I = op->i;
    i64 mx;
    switch (op->code) {
    case OP_CONV_T8: case OP_CONV_TT: case OP_CONV_F32:
        return check_conv(op, len, err);
    case OP_MAXPOOL:            /* B H W C Ho Wo size stride pad_t pad_l: windows are clipped to the input */
        for (int k = 0; k < 10; k++) REQUIRE(I[k] >= (k < 8 ? 1 : 0));
        NEED(0, 4LL * I[0] * I[1] * I[2] * I[3]);
        NEED(1, 4LL * I[0] * I[4] * I[5] * I[3]);
        return 0;
    case OP_AVGPOOL:            /* B H W C */
        for (int k = 0; k < 4; k++) REQUIRE(I[k] >= 1);
        NEED(0, 4LL * I[0] * I[1] * I[2] * I[3]);
        NEED(1, 4LL * I[0] * I[3]);
        return 0;
    case OP_CONCAT: {           /* B P nin Cout C0 C1 ... */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1 && I[2] <= 16);   /* in0..in15 */
        i64 sum = 0;
        for (int k = 0; k < I[2]; k++) {
            REQUIRE(I[4 + k] >= 1);
            NEED(1 + k, 4LL * I[0] * I[1] * I[4 + k]);
            sum += I[4 + k];
        }
        REQUIRE(sum == I[3]);
        NEED(0, 4LL * I[0] * I[1] * I[3]);
        return 0;
    }
    case OP_ADD: case OP_ACT: { /* n act chunks; add reads two inputs */
        int nin = op->code == OP_ADD ? 2 : 1;
        REQUIRE(I[0] >= 1 && I[2] >= 1 && I[1] >= 0 && I[1] <= TN_ACT_LAST && I[1] != TN_ACT_PRELU);
        for (int k = 0; k <= nin; k++) NEED(k, 4LL * I[0]);
        return 0;
    }
    case OP_UPSAMPLE:           /* B H W C stride */
        for (int k = 0; k < 5; k++) REQUIRE(I[k] >= 1);
        NEED(0, 4LL * I[0] * I[1] * I[2] * I[3]);
        NEED(1, 4LL * I[0] * I[1] * I[4] * I[2] * I[4] * I[3]);
        return 0;
    case OP_GATHER:             /* B n_out n_in; idx[n_out] in [0, n_in) */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1);
        NEED(0, 4LL * I[0] * I[2]);
        NEED(1, 4LL * I[1]);
        NEED(2, 4LL * I[0] * I[1]);
        if (!table_in(op, 1, I[1], 0, (i64)I[2] - 1, &mx)) return fail(err, "gather index out of range");
        return 0;
    case OP_SLICE:              /* B P C start Cout: the slice lies inside the input's channels */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1 && I[3] >= 0 && I[4] >= 1 && (i64)I[3] + I[4] <= I[2]);
        NEED(0, 4LL * I[0] * I[1] * I[2]);
        NEED(1, 4LL * I[0] * I[1] * I[4]);
        return 0;
    case OP_CONV_GROUPED: {     /* B H W C Ho Wo N kh kw stride pad_t pad_l groups act: taps outside are skipped */
        for (int k = 0; k < 14; k++) REQUIRE(I[k] >= (k == 10 || k == 11 || k == 13 ? 0 : 1));
        REQUIRE(I[3] % I[12] == 0 && I[6] % I[12] == 0 && I[13] <= TN_ACT_LAST && I[13] != TN_ACT_PRELU);
        i64 B = I[0], N = I[6];
        NEED(0, 4 * B * I[1] * I[2] * I[3]);
        NEED(1, 4LL * I[7] * I[8] * (I[3] / I[12]) * N);
        NEED(2, 4 * N);
        NEED(3, 4 * N);
        NEED(4, 4 * B * I[4] * I[5] * N);
        return 0;
    }
    case OP_SCALE_CHANNELS:     /* B P C act */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1 && I[3] >= 0 && I[3] <= TN_ACT_LAST && I[3] != TN_ACT_PRELU);
        NEED(0, 4LL * I[0] * I[1] * I[2]);
        NEED(1, 4LL * I[0] * I[2]);
        NEED(2, 4LL * I[0] * I[1] * I[2]);
        return 0;
    case OP_SHORTCUT: {         /* B P C n act weighted C_0 .. C_n-1; b: out x weights in0 .. in14 */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1 && I[3] >= 1 && I[3] <= 15 && I[4] >= 0 && I[4] <= TN_ACT_LAST &&
                I[4] != TN_ACT_PRELU && (I[5] == 0 || I[5] == 1));
        NEED(0, 4LL * I[0] * I[1] * I[2]);
        NEED(1, 4LL * I[0] * I[1] * I[2]);
        if (I[5]) NEED(2, 4LL * (I[3] + 1) * I[2]);
        for (int k = 0; k < I[3]; k++) {
            REQUIRE(I[6 + k] >= 1);
            NEED(3 + k, 4LL * I[0] * I[1] * I[6 + k]);
        }
        return 0;
    }
    case OP_LINEAR:             /* B K N act */
        REQUIRE(I[0] >= 1 && I[1] >= 1 && I[2] >= 1 && I[3] >= 0 && I[3] <= TN_ACT_LAST && I[3] != TN_ACT_PRELU);
        NEED(0, 4LL * I[0] * I[1]);
        NEED(1, 4LL * I[2] * I[1]);
        NEED(2, 4LL * I[2]);
        NEED(3, 4LL * I[0] * I[2]);
        return 0;
    }
    return fail(err, "unknown op code %d", op->code);
}
