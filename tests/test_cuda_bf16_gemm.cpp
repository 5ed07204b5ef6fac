// The fast numerics' BF16 product (src/cuda/bf16_gemm.h) against a double-precision reference on
// the same bfloat16-rounded activations and the BF16 weights: relative max error <= 1e-4 (float32
// accumulation in another order); rows from 1 to 200, widths not multiples of 128.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda/bf16_gemm.h"
#include "cuda_test_util.h"
#include "r1/number_formats.h"

namespace r1 {
namespace {

TEST(CudaBf16Gemm, MatchesDoubleReferenceOnRoundedActivations) {
  R1_REQUIRE_GPU();
  cuda::Bf16Gemm gemm;
  for (auto [out, in] : {std::pair{256, 512}, std::pair{1000, 160}, std::pair{64, 7168}})
    for (int rows : {1, 8, 33, 200}) {
      const std::vector<float> w_float = random_floats(size_t(out) * in, 1, 0.05f), x = random_floats(size_t(rows) * in, 2);
      std::vector<uint16_t> w(w_float.size());
      std::transform(w_float.begin(), w_float.end(), w.begin(), float_to_bf16);
      std::vector<float> expected(size_t(rows) * out);
      for (int r = 0; r < rows; ++r)
        for (int o = 0; o < out; ++o) {
          double sum = 0;
          for (int k = 0; k < in; ++k)
            sum += double(bf16_to_float(float_to_bf16(x[size_t(r) * in + k]))) * bf16_to_float(w[size_t(o) * in + k]);
          expected[size_t(r) * out + o] = float(sum);
        }
      DeviceVector<uint16_t> dw(w);
      DeviceVector<float> dx(x), dy(expected.size(), NAN);
      DeviceVector<uint16_t> dx_bf16(x.size());
      cuda::WeightView view{dw.get(), nullptr, cuda::WeightType::bf16, out, in, 128};
      ASSERT_TRUE(cuda::bf16_gemm_supported(view));
      auto* x_bf16 = reinterpret_cast<__nv_bfloat16*>(dx_bf16.get());
      cuda::to_bf16(dx.get(), x_bf16, int64_t(x.size()), nullptr);
      gemm.linear(view, rows, x_bf16, dy.get(), nullptr);
      EXPECT_LT(relative_max_error(dy.host(), expected), 1e-4) << rows << " x " << in << " -> " << out;
    }
}

}  // namespace
}  // namespace r1
