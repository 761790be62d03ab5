/* tritnet_rt kernels: types shared by every ISA file, the executor and the Python binding.
 *
 * Two GEMM families, each with a serial reference (the test oracle) and SIMD versions named
 * tn_<op>_<dtype>_<isa>:
 *   tn_gemm_t8_*  int8 activations (u8, zero point zp) x ternary weights (s8 codes), int32 sums
 *   tn_gemm_tt_*  ternary activations x ternary weights as bit planes (popcount)
 * Both finish with the same epilogue: v = (acc - zp*wsum[n]) * scale[n] + bias[n] (+ residual), activation.
 */
#ifndef TN_H
#define TN_H
#include <stdint.h>
#include <stddef.h>

/* in order of preference: the last one this CPU runs is the default */
enum { TN_ISA_SERIAL = 0, TN_ISA_AVX2, TN_ISA_AVX512, TN_ISA_NEON, TN_ISA_AMX, TN_ISA_DOTPROD, TN_ISA_I8MM, TN_ISA_COUNT };
enum { TN_ACT_LINEAR = 0, TN_ACT_RELU, TN_ACT_LEAKY, TN_ACT_PRELU, TN_ACT_LOGISTIC, TN_ACT_SWISH, TN_ACT_MISH,
       TN_ACT_LAST = TN_ACT_MISH };

typedef struct {
    /* A(m, s, j) = a[pix[m] + seg[s] + j]: output pixel m, segment (kernel tap) s, byte j < L; a_len: the bytes
     * from a that may be read (the int8 path's padded image; 0: unknown, no kernel reads past a segment) */
    const uint8_t *a; const int32_t *pix; const int32_t *seg; int S, L; size_t a_len;
    /* one number per conv call (0: none): a kernel may keep what it gathered from a for the call's next task */
    unsigned long gen;
    /* int8 path: w packed [N/16][S*L/4][16][4] s8.  popcount path: a is [M][2][KW] u64, w [N/8][KW][2][8] u64 */
    const void *w; int N; int KW;
    const int32_t *wsum; int zp;                 /* acc - zp*wsum[n] is the true sum over (u - zp)*w */
    const float *scale, *bias;                   /* per output channel (already times the input scale) */
    int act; const float *prelu;
    const float *res; const int32_t *res_pix; int res_c, res_off;   /* optional residual, added before act */
    float *out; int ldo; int m_base;             /* out[(m - m_base)*ldo + n]: a task may write a scratch block */
    /* fused 2x2 max pool, asked of a tn_kernels.t8pool: [m0, m1) is two conv rows of pool_wo pixels and out[p·ldo + n]
     * gets the pooled row (p < pool_wo / 2) */
    int pool_wo;
} tn_gemm_args;

typedef void (*tn_gemm_fn)(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);

/* Int8-path weights kept at 2 bits in memory (a quarter of the int8 layout: yolov2-tiny-voc's 15 MB become
 * 3.8): w is [N/16][Kp/4][16] bytes, Kp = K rounded up to 64 (zero codes after K). Byte (r, slot) holds the four
 * codes k = 4r..4r+3 of one channel, code j in bits 2j..2j+1 as v & 3 (0, 1, 3 = -1). Channel c sits in slot
 * TN_W2_SLOT(c): pairs of channels alternate between the row's two halves, so that one 16-byte broadcast gives
 * every 64-bit lane its pair (kernels_amx.c). A kernel that reads them expands a block into the int8 layout as it
 * goes; it returns 0, or -1 where it did nothing (the caller then expands the task's blocks for the int8 kernel). */
#define TN_W2_SLOT(c) (8 * (((c) >> 1) & 1) + 2 * ((c) >> 2) + ((c) & 1))
typedef int (*tn_gemm_w2_fn)(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
/* the int8 GEMM with the fused pool (pool_wo), on int8 or 2-bit (w2) weights: 0, or -1 where it did nothing */
typedef int (*tn_gemm_pool_fn)(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1, int w2);
/* For an int8 kernel on 2-bit weights: blocks nb0..nb1-1 of g's weights expanded into buf ([K/4][16][4] each,
 * K = S·L, then the 1 KiB of zeros an AMX tile may read past K: TN_W2_INT8_BYTES), and *e = *g reading them at
 * their own block offsets (the kernels index w by the absolute block number) */
#define TN_W2_INT8_BYTES(g, nblocks) ((size_t)(g)->S * (g)->L * 16 * (size_t)(nblocks) + 1024)
void tn_w2_as_int8(const tn_gemm_args *g, int nb0, int nb1, int8_t *buf, tn_gemm_args *e);
/* plan.py keeps a layer's weights at 2 bits on AMX from this depth (_tnrt.AMX_MIN_K): shallower layers hold a few
 * KB; and the AMX kernel's gathered path hands shallower layers to AVX-512 (kernels_amx.c) */
#define TN_AMX_MIN_K 256

/* m in [m0, m1); channel blocks nb in [nb0, nb1) of 16 (t8) or 8 (tt) channels */
void tn_gemm_t8_serial(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
void tn_gemm_tt_serial(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
void tn_gemm_t8_avx2(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
void tn_gemm_tt_avx2(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
void tn_gemm_t8_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
int tn_gemm_t8w2_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
int tn_gemm_t8pool_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1, int w2);
void tn_w2_as_int8_avx512(const tn_gemm_args *g, int nb0, int nb1, int8_t *buf, tn_gemm_args *e);  /* AVX-512BW */
void tn_gemm_tt_avx512(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
#endif
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && !defined(TN_SIMDE)
#define TN_HAVE_AMX 1
void tn_gemm_t8_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
int tn_gemm_t8w2_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
int tn_gemm_t8pool_amx(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1, int w2);
#endif
/* ARM. NEON is part of AArch64; on 32-bit ARM the NEON file enables it for itself (#pragma GCC target
 * "fpu=neon"), because Raspberry Pi OS 32-bit compiles for armv6 + VFP, and cpu.c asks the kernel (HWCAP_NEON)
 * before using it. The dot-product (ARMv8.2 SDOT) and I8MM (USMMLA) files enable their extension per file
 * too, so they need a compiler that knows it: GCC 8 (dotprod) and 10 (i8mm). Older clang's arm_neon.h hides the
 * intrinsics unless -march enables the extension, so with clang these files are built only when the flags
 * already do (Apple's arm64 default has dotprod); untested with clang. */
#if defined(__aarch64__) || defined(TN_SIMDE)
#define TN_HAVE_NEON 1
#elif defined(__arm__) && (defined(__ARM_NEON) || (defined(__GNUC__) && !defined(__clang__) && defined(__ARM_FP)))
#define TN_HAVE_NEON 1
#define TN_ARM32 1
#endif
#if defined(__aarch64__) && !defined(TN_SIMDE) && \
    (defined(__clang__) ? defined(__ARM_FEATURE_DOTPROD) : __GNUC__ >= 8)
#define TN_HAVE_DOTPROD 1
#endif
#if defined(__aarch64__) && !defined(TN_SIMDE) && \
    (defined(__clang__) ? defined(__ARM_FEATURE_MATMUL_INT8) : __GNUC__ >= 10)
#define TN_HAVE_I8MM 1
#endif
#ifdef TN_HAVE_NEON
void tn_gemm_t8_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
void tn_gemm_tt_neon(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
#endif
#if defined(TN_HAVE_DOTPROD) || defined(TN_SIMDE)      /* SIMDe emulates SDOT (not USMMLA) */
void tn_gemm_t8_dotprod(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
#endif
#ifdef TN_HAVE_I8MM
void tn_gemm_t8_i8mm(const tn_gemm_args *g, int m0, int m1, int nb0, int nb1);
#endif

/* o[i] = clamp(round_half_even(clamp(x[i]·inv, ±512)) + zp, 0, 255); and the min/max of x (with 0) */
typedef void (*tn_quant_fn)(const float *x, uint8_t *o, int n, float inv, int zp);
typedef void (*tn_minmax_fn)(const float *x, size_t n, float *mn, float *mx);
/* one pixel's ternary activation as bit planes: t = a·x + b; nonzero where t >= .5 or t < -.5, sign where t < -.5 */
typedef void (*tn_tact_fn)(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg);
void tn_tact_bits_serial(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg);
/* the same ternary activations as 8-bit codes for the int8 GEMM:
 * o[i] = 1 + [t >= .5] - [t < -.5] with t = a[i]·x[i] + b[i] */
typedef void (*tn_tcode_fn)(const float *x, const float *a, const float *b, size_t n, uint8_t *o);
void tn_tact_codes_serial(const float *x, const float *a, const float *b, size_t n, uint8_t *o);
void tn_quant_u8_serial(const float *x, uint8_t *o, int n, float inv, int zp);
void tn_minmax_f32_serial(const float *x, size_t n, float *mn, float *mx);
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
void tn_tact_bits_avx2(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg);
void tn_tact_codes_avx512(const float *x, const float *a, const float *b, size_t n, uint8_t *o);
void tn_quant_u8_avx512(const float *x, uint8_t *o, int n, float inv, int zp);
void tn_quant_u8_avx2(const float *x, uint8_t *o, int n, float inv, int zp);
void tn_minmax_f32_avx2(const float *x, size_t n, float *mn, float *mx);
#endif
#if defined(TN_HAVE_NEON) && !defined(TN_ARM32)   /* 32-bit NEON flushes denormals: those stay serial (VFP) */
void tn_tact_bits_neon(const float *x, const float *a, const float *b, int C, uint8_t *nz, uint8_t *sg);
void tn_quant_u8_neon(const float *x, uint8_t *o, int n, float inv, int zp);
void tn_minmax_f32_neon(const float *x, size_t n, float *mn, float *mx);
#endif

/* Grouped (depthwise) conv, float activations: one output row oy of image b. out[n] = act(scale[n]·Σ w·x + bias[n])
 * over the taps inside the input (zero padding), input channels (n / Ng)·Cg .. + Cg; w is [kh][kw][Cg][N] (ternary
 * codes as ±1/0, or floats with scale 1), x and out NHWC. */
typedef struct {
    const float *x; int H, W, C;
    const float *w; int N, Cg, Ng, kh, kw, stride, pt, pl;
    const float *scale, *bias; int act;
    float *out; int Ho, Wo;
} tn_gconv_args;
typedef void (*tn_gconv_fn)(const tn_gconv_args *g, int b, int oy);
void tn_gconv_row_serial(const tn_gconv_args *g, int b, int oy);
#if defined(__x86_64__) || defined(_M_X64) || defined(TN_SIMDE)
void tn_gconv_row_avx2(const tn_gconv_args *g, int b, int oy);   /* depthwise 8 channels a step, else serial */
#endif
#if defined(TN_HAVE_NEON) && !defined(TN_ARM32)
void tn_gconv_row_neon(const tn_gconv_args *g, int b, int oy);   /* depthwise 4 channels a step, else serial */
#endif

typedef struct { const char *name; tn_gemm_fn t8, tt; tn_quant_fn quant; tn_minmax_fn minmax; tn_tact_fn tact;
                 tn_gconv_fn gconv; tn_tcode_fn tcode; tn_gemm_w2_fn t8w2; tn_gemm_pool_fn t8pool;
} tn_kernels;                                           /* t8w2 and t8pool may be NULL */
extern const tn_kernels tn_isa_table[TN_ISA_COUNT];   /* NULL entries: not compiled in */
int tn_cpu_supports(int isa);                          /* compiled in and this CPU runs it */

/* thread pool: run fn(ctx, task) for task in [0, ntasks) on up to tn_threads threads */
typedef void (*tn_task_fn)(void *ctx, int task);
void tn_parallel(int ntasks, tn_task_fn fn, void *ctx);
void tn_set_threads(int n);
int tn_get_threads(void);
#endif
