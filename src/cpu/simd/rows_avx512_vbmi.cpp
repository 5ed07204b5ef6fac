// The AVX-512 row kernels with FP8 weights decoded by table lookup (fp8_vbmi.h): the same
// values in the same lanes as rows_avx512.cpp's integer decoding, so the same sums bit for bit,
// in about half the instructions per weight. Compiled with -mavx512vbmi besides
// rows_avx512.cpp's flags; only called after dispatch.cpp has checked the CPU.
#include "cpu/simd/avx512_vector.h"
#include "cpu/simd/fp8_vbmi.h"
#include "cpu/simd/rows_impl.h"

namespace r1::simd {
namespace {

struct Avx512Vbmi : Avx512 {
  // 64 weights, e4m3 · 2^-8 (rows_impl.h's kFp8Unit), as four vectors in column order.
  static void fp8x4(const uint8_t* p, F* out) { fp8_to_floatx4<-8>(p, out); }
};

}  // namespace

extern const Kernels kAvx512VbmiKernels = {Isa::avx512_vbmi, "avx512-vbmi", rows<Avx512Vbmi>, columns<Avx512Vbmi>, decode_row<Avx512Vbmi>,
                                       read_sum<Avx512Vbmi>, fma_loop<Avx512Vbmi>, Avx512Vbmi::W};

}  // namespace r1::simd
