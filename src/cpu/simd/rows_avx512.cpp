// The row kernels with AVX-512 (F, BW, VL): 16 floats a vector. Compiled with -mavx512f
// -mavx512bw -mavx512vl; only called after dispatch.cpp has checked the CPU.
#include "cpu/simd/avx512_vector.h"
#include "cpu/simd/rows_impl.h"

namespace r1::simd {

extern const Kernels kAvx512Kernels = {Isa::avx512, "avx512", rows<Avx512>, columns<Avx512>, decode_row<Avx512>, read_sum<Avx512>,
                                   fma_loop<Avx512>, Avx512::W};

}  // namespace r1::simd
