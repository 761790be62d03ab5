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
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef TN_SIMDE      /* what SIMDe lacks, lane by lane with the same rounding */
static inline __m512 tn_cvtepi32_ps512(__m512i a) {
    int32_t i[16]; float f[16];
    _mm512_storeu_si512((void *)i, a);
    for (int k = 0; k < 16; k++) f[k] = (float)i[k];
    return _mm512_loadu_ps(f);
}
static inline __m512i tn_cvtps_epi32_512(__m512 a) {     /* nor _mm512_cvtps_epi32 (round half to even) */
    float f[16]; int32_t i[16];
    _mm512_storeu_ps(f, a);
    for (int k = 0; k < 16; k++) i[k] = (int32_t)nearbyintf(f[k]);
    return _mm512_loadu_si512((const void *)i);
}
static inline __m128i tn_cvtusepi32_epi8_512(__m512i a) { /* nor _mm512_cvtusepi32_epi8 (unsigned saturation) */
    uint32_t i[16]; uint8_t b[16];
    _mm512_storeu_si512((void *)i, a);
    for (int k = 0; k < 16; k++) b[k] = (uint8_t)(i[k] > 255 ? 255 : i[k]);
    return _mm_loadu_si128((const __m128i *)b);
}
#else
#define tn_cvtps_epi32_512(a) _mm512_cvt_roundps_epi32((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define tn_cvtusepi32_epi8_512 _mm512_cvtusepi32_epi8
#define tn_cvtepi32_ps512 _mm512_cvtepi32_ps
#endif
static inline int32_t tn_load4(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t tn_load8(const uint64_t *p) { int64_t v; memcpy(&v, p, 8); return v; }
#endif
