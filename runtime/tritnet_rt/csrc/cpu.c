/* Which ISA paths are compiled in (the table) and which this CPU runs (cpuid via the compiler builtins; AMX
 * also needs the kernel's permission to use tile data, asked for once per process). */
#define _GNU_SOURCE 1                 /* syscall() */
#include "tn.h"
#if defined(TN_HAVE_AMX) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

const tn_kernels tn_isa_table[TN_ISA_COUNT] = {
    {"serial", tn_gemm_t8_serial, tn_gemm_tt_serial, tn_quant_u8_serial, tn_minmax_f32_serial, tn_tact_bits_serial},
#if defined(__x86_64__) || defined(_M_X64)
    {"avx2", tn_gemm_t8_avx2, tn_gemm_tt_avx2, tn_quant_u8_avx2, tn_minmax_f32_avx2, tn_tact_bits_avx2},
    {"avx512", tn_gemm_t8_avx512, tn_gemm_tt_avx512, tn_quant_u8_avx2, tn_minmax_f32_avx2, tn_tact_bits_avx2},
#else
    {"avx2", 0, 0, 0, 0, 0},
    {"avx512", 0, 0, 0, 0, 0},
#endif
#if defined(__aarch64__)
    {"neon", tn_gemm_t8_neon, tn_gemm_tt_neon, tn_quant_u8_serial, tn_minmax_f32_serial, tn_tact_bits_serial},
#else
    {"neon", 0, 0, 0, 0, 0},
#endif
#if defined(TN_HAVE_AMX)      /* AMX for the int8 GEMM; the rest as AVX-512 (AMX CPUs have it) */
    {"amx", tn_gemm_t8_amx, tn_gemm_tt_avx512, tn_quant_u8_avx2, tn_minmax_f32_avx2, tn_tact_bits_avx2},
#else
    {"amx", 0, 0, 0, 0, 0},
#endif
};

#if defined(TN_HAVE_AMX) && defined(__linux__)
/* AMX-TILE and AMX-INT8 (cpuid 7.0 EDX bits 24, 25), and Linux's permission for the tile data state
 * (arch_prctl ARCH_REQ_XCOMP_PERM, feature 18): without it the first tile instruction kills the process. */
static int amx_usable(void) {
    static int answer = -1;
    if (answer < 0) {
        unsigned a, b, c, d;
        answer = 0;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1) && (d >> 25 & 1))
            answer = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
    }
    return answer;
}
#endif

int tn_cpu_supports(int isa) {
    if (isa < 0 || isa >= TN_ISA_COUNT || !tn_isa_table[isa].t8) return 0;
    switch (isa) {
    case TN_ISA_SERIAL: return 1;
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
    case TN_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
    case TN_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
               __builtin_cpu_supports("avx512vpopcntdq");
#endif
#if defined(__aarch64__)
    case TN_ISA_NEON: return 1;
#endif
#if defined(TN_HAVE_AMX) && defined(__linux__)
    case TN_ISA_AMX: return tn_cpu_supports(TN_ISA_AVX512) && amx_usable();
#endif
    default: return 0;
    }
}
