// Run-time choice of the row kernels: the ISA translation units are compiled for their
// instruction sets whatever the build machine is, and used only where this CPU has them.
#include "cpu/simd/bf16_kernels.h"
#include "cpu/simd/kernels.h"

namespace r1::simd {

extern const Kernels kPortableKernels;
extern const Bf16Kernels kPortableBf16Kernels;
#if defined(R1_HAVE_X86_KERNELS)
extern const Kernels kAvx2Kernels, kAvx512Kernels, kAvx512VbmiKernels;
extern const Bf16Kernels kAvx512Bf16Kernels;
#endif

const Kernels* kernels_for(Isa isa) {
  switch (isa) {
    case Isa::portable: return &kPortableKernels;
#if defined(R1_HAVE_X86_KERNELS)
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")
                 ? &kAvx2Kernels : nullptr;
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                     __builtin_cpu_supports("avx512vl")
                 ? &kAvx512Kernels : nullptr;
    case Isa::avx512_vbmi:
      return kernels_for(Isa::avx512) && __builtin_cpu_supports("avx512vbmi") ? &kAvx512VbmiKernels : nullptr;
#endif
    default: return nullptr;
  }
}

const Bf16Kernels* bf16_kernels_for(Isa isa) {
  switch (isa) {
    case Isa::portable: return &kPortableBf16Kernels;
#if defined(R1_HAVE_X86_KERNELS)
    case Isa::avx512:
      // VBMI too: the fast kernels widen FP8 by table (fp8_vbmi.h). Every CPU with AVX512-BF16
      // has it but Cooper Lake, which then runs the exact kernels.
      return kernels_for(Isa::avx512_vbmi) && __builtin_cpu_supports("avx512bf16") ? &kAvx512Bf16Kernels : nullptr;
#endif
    default: return nullptr;
  }
}

const Kernels& best_kernels() {
  static const Kernels* best = kernels_for(Isa::avx512_vbmi) ? kernels_for(Isa::avx512_vbmi)
                               : kernels_for(Isa::avx512) ? kernels_for(Isa::avx512)
                               : kernels_for(Isa::avx2) ? kernels_for(Isa::avx2)
                                                        : &kPortableKernels;
  return *best;
}

}  // namespace r1::simd
