/* Which ISA paths are compiled in (the table) and which this CPU runs (cpuid via the compiler builtins; AMX
 * also needs the kernel's permission to use tile data, asked for once per process; on ARM the feature bits
 * the kernel reports in the ELF auxiliary vector, or sysctl on macOS). */
#define _GNU_SOURCE 1                 /* syscall() */
#include "tn.h"
#if defined(TN_HAVE_AMX) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(TN_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(TN_HAVE_NEON) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

/* the last fields: the int8 GEMM on 2-bit weights and with the fused pool, where the ISA has them (tn.h) */
const tn_kernels tn_isa_table[TN_ISA_COUNT] = {
    {"serial", tn_gemm_t8_serial, tn_gemm_tt_serial, tn_quant_u8_serial, tn_minmax_f32_serial, tn_tact_bits_serial,
     tn_gconv_row_serial, tn_tact_codes_serial, 0, 0},
#if defined(__x86_64__) || defined(_M_X64)
    {"avx2", tn_gemm_t8_avx2, tn_gemm_tt_avx2, tn_quant_u8_avx2, tn_minmax_f32_avx2, tn_tact_bits_avx2,
     tn_gconv_row_avx2, tn_tact_codes_serial, 0, 0},
    {"avx512", tn_gemm_t8_avx512, tn_gemm_tt_avx512, tn_quant_u8_avx512, tn_minmax_f32_avx2, tn_tact_bits_avx2,
     tn_gconv_row_avx2, tn_tact_codes_avx512, tn_gemm_t8w2_avx512, tn_gemm_t8pool_avx512},
#else
    {"avx2", 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {"avx512", 0, 0, 0, 0, 0, 0, 0, 0, 0},
#endif
#if defined(TN_HAVE_NEON) && !defined(TN_ARM32)
    {"neon", tn_gemm_t8_neon, tn_gemm_tt_neon, tn_quant_u8_neon, tn_minmax_f32_neon, tn_tact_bits_neon,
     tn_gconv_row_neon, tn_tact_codes_serial, 0, 0},
#elif defined(TN_HAVE_NEON)   /* 32-bit NEON flushes denormals to zero: the float steps stay on VFP (serial) */
    {"neon", tn_gemm_t8_neon, tn_gemm_tt_neon, tn_quant_u8_serial, tn_minmax_f32_serial, tn_tact_bits_serial,
     tn_gconv_row_serial, tn_tact_codes_serial, 0, 0},
#else
    {"neon", 0, 0, 0, 0, 0, 0, 0, 0, 0},
#endif
#if defined(TN_HAVE_AMX)      /* AMX for the int8 GEMM; the rest as AVX-512 (AMX CPUs have it) */
    {"amx", tn_gemm_t8_amx, tn_gemm_tt_avx512, tn_quant_u8_avx512, tn_minmax_f32_avx2, tn_tact_bits_avx2,
     tn_gconv_row_avx2, tn_tact_codes_avx512, tn_gemm_t8w2_amx, tn_gemm_t8pool_amx},
#else
    {"amx", 0, 0, 0, 0, 0, 0, 0, 0, 0},
#endif
#if defined(TN_HAVE_DOTPROD)  /* SDOT for the int8 GEMM; the rest as NEON */
    {"dotprod", tn_gemm_t8_dotprod, tn_gemm_tt_neon, tn_quant_u8_neon, tn_minmax_f32_neon, tn_tact_bits_neon,
     tn_gconv_row_neon, tn_tact_codes_serial, 0, 0},
#else
    {"dotprod", 0, 0, 0, 0, 0, 0, 0, 0, 0},
#endif
#if defined(TN_HAVE_I8MM)     /* USMMLA for the int8 GEMM; the rest as NEON */
    {"i8mm", tn_gemm_t8_i8mm, tn_gemm_tt_neon, tn_quant_u8_neon, tn_minmax_f32_neon, tn_tact_bits_neon,
     tn_gconv_row_neon, tn_tact_codes_serial, 0, 0},
#else
    {"i8mm", 0, 0, 0, 0, 0, 0, 0, 0, 0},
#endif
};

#if defined(TN_HAVE_NEON)
/* ARM feature bits (Linux's values; glibc before 2.33 lacks some names). AArch64: AT_HWCAP's ASIMDDP
 * (SDOT/UDOT) and AT_HWCAP2's I8MM. 32-bit ARM: AT_HWCAP's NEON (32-bit builds have the NEON path only). */
#define TN_HWCAP_ASIMDDP (1ul << 20)
#define TN_HWCAP2_I8MM (1ul << 13)
#define TN_HWCAP_ARM_NEON (1ul << 12)
enum { TN_ARM_NEON, TN_ARM_DOTPROD, TN_ARM_I8MM };
static int arm_has(int feature) {
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
#if defined(__aarch64__)
    switch (feature) {
    case TN_ARM_NEON: return 1;                   /* part of AArch64 */
    case TN_ARM_DOTPROD: return (hw & TN_HWCAP_ASIMDDP) != 0;
    case TN_ARM_I8MM: return (hw2 & TN_HWCAP2_I8MM) != 0;
    }
#else
    (void)hw2;
    return feature == TN_ARM_NEON && (hw & TN_HWCAP_ARM_NEON) != 0;
#endif
#elif defined(__APPLE__) && defined(__aarch64__)
    const char *name = feature == TN_ARM_DOTPROD ? "hw.optional.arm.FEAT_DotProd" : "hw.optional.arm.FEAT_I8MM";
    int v = 0;
    size_t len = sizeof v;
    if (feature == TN_ARM_NEON) return 1;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v == 1;
#elif defined(__aarch64__) || defined(__ARM_NEON)
    return feature == TN_ARM_NEON;                /* elsewhere: no way to ask, what the flags promise */
#else
    (void)feature;
#endif
    return 0;
}
#endif

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
#if defined(TN_HAVE_NEON)
    case TN_ISA_NEON: return arm_has(TN_ARM_NEON);
#endif
#if defined(TN_HAVE_DOTPROD)
    case TN_ISA_DOTPROD: return arm_has(TN_ARM_DOTPROD);
#endif
#if defined(TN_HAVE_I8MM)
    case TN_ISA_I8MM: return arm_has(TN_ARM_I8MM);
#endif
#if defined(TN_HAVE_AMX) && defined(__linux__)
    case TN_ISA_AMX:       /* VBMI for the 2-bit weights' expansion (every AMX CPU so far has it) */
        return tn_cpu_supports(TN_ISA_AVX512) && __builtin_cpu_supports("avx512vbmi") && amx_usable();
#endif
    default: return 0;
    }
}
