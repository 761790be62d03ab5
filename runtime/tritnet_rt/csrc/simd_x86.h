/* x86 intrinsics for one ISA file. Natively, a `#pragma GCC target` (set by the including file) lets one
 * build hold every path; with -DTN_SIMDE the same source compiles against SIMDe's portable emulation, so
 * the AVX-512 code can be tested on a CPU without AVX-512. */
#ifndef TN_SIMD_X86_H
#define TN_SIMD_X86_H
#ifdef TN_SIMDE
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#else
#include <immintrin.h>
#endif
#include <stdint.h>
#include <string.h>
#ifdef TN_SIMDE      /* SIMDe has no _mm512_cvtepi32_ps: convert lane by lane (same rounding) */
static inline __m512 tn_cvtepi32_ps512(__m512i a) {
    int32_t i[16]; float f[16];
    _mm512_storeu_si512((void *)i, a);
    for (int k = 0; k < 16; k++) f[k] = (float)i[k];
    return _mm512_loadu_ps(f);
}
#else
#define tn_cvtepi32_ps512 _mm512_cvtepi32_ps
#endif
static inline int32_t tn_load4(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t tn_load8(const uint64_t *p) { int64_t v; memcpy(&v, p, 8); return v; }
#endif
