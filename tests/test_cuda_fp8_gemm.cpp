// The FP8 `fast` path: the activation quantizer against a CPU reference of the same rule (bit for
// bit, codes and scales, in the padded layout of kernels/launch.h), and the cuBLASLt block-scaled
// GEMM against
//  (1) a double-precision reference on the same quantized activations and dequantized weights:
//      relative max error <= 1e-3 (float32 accumulation in another order; Hopper's FP8 tensor
//      cores also keep fewer accumulator bits inside each 128-column block), and
//  (2) the exact float32 path (grouped_linear on the unquantized activations), per element within
//      the quantization bound: e4m3 rounds a normal value to within 2^-4 of itself and a
//      subnormal one to within half its step, 2^-10·s (s the block's scale), so
//        |y_fast - y_exact| <= 2^-4 Σ_k |x_k| |w_k| + 2^-10 Σ_k s_k |w_k|
//                              + 1e-3 max|y_ref| (the GEMM's own tolerance, from (1))
//                              + 1e-5 Σ_k |x_k| |w_k| (float32 rounding in both paths).
#include <cuda_fp8.h>
#include <cublasLt.h>

#include "cuda/cublaslt_library.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "cpu/thread_pool.h"
#include "cuda/fp8_gemm.h"
#include "cuda_test_util.h"
#include "kernels/launch.h"
#include "r1/number_formats.h"

namespace r1 {
namespace {

using cuda::WeightType;
using cuda::WeightView;

int blocks_of_128(int n) { return (n + 127) / 128; }

// ---- CPU reference of quantize_fp8 ----

struct Quantized {
  std::vector<int> padded;     // [groups + 1] padded group starts
  std::vector<uint8_t> codes;  // [padded rows][in]
  std::vector<float> scales;   // group g: [L][padded count] at padded[g] * L
  float scale(int g, int j, int b, int in) const {
    return scales[size_t(padded[g]) * blocks_of_128(in) + size_t(b) * (padded[g + 1] - padded[g]) + j];
  }
};

Quantized quantize_reference(const std::vector<float>& x, int in, const std::vector<int>& offsets) {
  const int groups = int(offsets.size()) - 1, l = blocks_of_128(in);
  Quantized q;
  q.padded.push_back(0);
  for (int g = 0; g < groups; ++g) q.padded.push_back(q.padded.back() + cuda::fp8_padded_count(offsets[g + 1] - offsets[g]));
  q.codes.assign(size_t(q.padded.back()) * in, 0);
  q.scales.assign(size_t(q.padded.back()) * l, 1.0f);  // pad rows: scale 1
  for (int g = 0; g < groups; ++g)
    for (int j = 0; j < offsets[g + 1] - offsets[g]; ++j) {
      const float* row = x.data() + size_t(offsets[g] + j) * in;
      for (int b = 0; b < l; ++b) {
        const int k0 = b * 128, k1 = std::min(in, k0 + 128);
        float amax = 0.0f;
        for (int k = k0; k < k1; ++k) amax = std::fmax(amax, std::fabs(row[k]));
        float s = amax / 448.0f;
        if (s == 0.0f) s = 1.0f;
        q.scales[size_t(q.padded[g]) * l + size_t(b) * (q.padded[g + 1] - q.padded[g]) + j] = s;
        for (int k = k0; k < k1; ++k) q.codes[size_t(q.padded[g] + j) * in + k] = float_to_e4m3(row[k] / s);
      }
    }
  return q;
}

// Random activations whose rows differ in magnitude by up to 10^4, with a zero row and a zero
// block (scale 1), so that the per-block scales matter.
std::vector<float> test_activations(int rows, int in, uint32_t seed) {
  std::vector<float> x = random_floats(size_t(rows) * in, seed);
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < in; ++k) x[size_t(r) * in + k] *= std::pow(10.0f, float(r % 5 - 2));
  if (rows > 5) std::fill(x.begin() + size_t(5) * in, x.begin() + size_t(6) * in, 0.0f);
  if (rows > 6) std::fill(x.begin() + size_t(6) * in, x.begin() + size_t(6) * in + std::min(in, 128), 0.0f);
  return x;
}

// ---- weights ----

// A random e4m3 [out, in] weight with 128×128 block scales, as the checkpoint stores them.
struct Fp8Weight {
  int out, in;
  std::vector<uint8_t> codes;
  std::vector<float> scales;  // [ceil(out/128)][ceil(in/128)]
  Fp8Weight(int out_dim, int in_dim, uint32_t seed) : out(out_dim), in(in_dim), codes(size_t(out_dim) * in_dim) {
    std::mt19937 rng(seed);
    for (auto& c : codes) {
      c = uint8_t(rng());
      if ((c & 0x7F) == 0x7F) c &= 0xFE;  // no NaN codes
    }
    scales = random_floats(size_t(blocks_of_128(out)) * blocks_of_128(in), seed + 1);
    for (auto& s : scales) s = 1e-3f * (1.0f + std::fabs(s));
  }
  double at(int o, int k) const {
    return double(e4m3_to_float(codes[size_t(o) * in + k])) * scales[size_t(o / 128) * blocks_of_128(in) + k / 128];
  }
};

struct DeviceFp8Weight {
  DeviceVector<uint8_t> codes;
  DeviceVector<float> scales;
  WeightView view;
  explicit DeviceFp8Weight(const Fp8Weight& w) : codes(w.codes), scales(w.scales) {
    view.data = codes.get();
    view.scale_inv = scales.get();
    view.type = WeightType::e4m3;
    view.out = w.out;
    view.in = w.in;
    view.block = 128;
  }
};

// ---- CPU reference of the GEMM, in double ----

// For rows [begin, end) of x (original order) times one weight: y from the quantized activations
// and dequantized weights, and the two sums of the bound against the exact path.
struct Reference {
  std::vector<double> y, abs_dot, scale_dot;  // [rows][out]
};

void reference_rows(const Quantized& q, int g, const std::vector<float>& x, int begin, int rows, const Fp8Weight& w,
                    ThreadPool& pool, Reference& ref, int ref_row0) {
  const int in = w.in, out = w.out, l = blocks_of_128(in);
  std::vector<double> wd(size_t(out) * in), wa(size_t(out) * in);
  for (int o = 0; o < out; ++o)
    for (int k = 0; k < in; ++k) {
      wd[size_t(o) * in + k] = w.at(o, k);
      wa[size_t(o) * in + k] = std::fabs(wd[size_t(o) * in + k]);
    }
  pool.parallel_for(rows, [&](int r0, int r1, int) {
    std::vector<double> xd(in), xa(in), s(l);
    for (int j = r0; j < r1; ++j) {
      for (int b = 0; b < l; ++b) s[b] = q.scale(g, j, b, in);
      for (int k = 0; k < in; ++k) {
        xd[k] = double(e4m3_to_float(q.codes[size_t(q.padded[g] + j) * in + k])) * s[k / 128];
        xa[k] = std::fabs(x[size_t(begin + j) * in + k]);
      }
      for (int o = 0; o < out; ++o) {
        const double *wr = wd.data() + size_t(o) * in, *war = wa.data() + size_t(o) * in;
        double y = 0, a = 0, sd = 0;
        for (int b = 0; b < l; ++b) {
          double block_abs_w = 0;
          for (int k = b * 128; k < std::min(in, b * 128 + 128); ++k) {
            y += xd[k] * wr[k];
            a += xa[k] * war[k];
            block_abs_w += war[k];
          }
          sd += s[b] * block_abs_w;
        }
        const size_t i = size_t(ref_row0 + j) * out + o;
        ref.y[i] = y, ref.abs_dot[i] = a, ref.scale_dot[i] = sd;
      }
    }
  });
}

Reference reference_grouped(const Quantized& q, const std::vector<float>& x, const std::vector<int>& offsets,
                            const std::vector<const Fp8Weight*>& weights, ThreadPool& pool) {
  const int rows = offsets.back(), out = weights[0]->out;
  Reference ref{std::vector<double>(size_t(rows) * out), std::vector<double>(size_t(rows) * out),
                std::vector<double>(size_t(rows) * out)};
  for (size_t g = 0; g + 1 < offsets.size(); ++g)
    reference_rows(q, int(g), x, offsets[g], offsets[g + 1] - offsets[g], *weights[g], pool, ref, offsets[g]);
  return ref;
}

std::vector<float> to_floats(const std::vector<double>& v, size_t n) { return std::vector<float>(v.begin(), v.begin() + n); }

// Every element of y_fast within the bound of the file comment around y_exact.
void expect_within_quantization_bound(const std::vector<float>& fast, const std::vector<float>& exact,
                                      const Reference& ref, const std::string& what) {
  double max_ref = 0;
  for (size_t i = 0; i < fast.size(); ++i) max_ref = std::max(max_ref, std::fabs(ref.y[i]));
  int failures = 0;
  double worst = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    const double bound = std::ldexp(1.0, -4) * ref.abs_dot[i] + std::ldexp(1.0, -10) * ref.scale_dot[i] +
                         1e-3 * max_ref + 1e-5 * ref.abs_dot[i];
    const double diff = std::fabs(double(fast[i]) - double(exact[i]));
    worst = std::max(worst, diff / std::max(bound, 1e-300));
    if (!(diff <= bound) && ++failures <= 3)
      ADD_FAILURE() << what << ": element " << i << " fast " << fast[i] << " exact " << exact[i] << " bound " << bound;
  }
  EXPECT_EQ(failures, 0) << what << " (largest error / bound " << worst << ")";
}

// ---- fixtures ----

class CudaFp8 : public ::testing::Test {
 protected:
  void SetUp() override { R1_REQUIRE_GPU(); }
};

class CudaFp8Gemm : public ::testing::Test {
 protected:
  void SetUp() override {
    R1_REQUIRE_GPU();
    // Any 16-byte-aligned e4m3 view: fp8_gemm_supported reads no memory.
    alignas(16) static const float dummy[4] = {};
    WeightView probe{dummy, dummy, WeightType::e4m3, 256, 512, 128};
    if (!cuda::fp8_gemm_supported(probe, 1)) {
      std::string why = "cuBLASLt version ";
      if (const cuda::CublasLtLibrary* library = cuda::cublaslt_library(&why)) why += std::to_string(library->cublasLtGetVersion());
      GTEST_SKIP() << "skipped: the block-scaled FP8 GEMM needs compute capability 9.0 and cuBLASLt 12.9+ (" << why << ")";
    }
    gemm_ = std::make_unique<cuda::Fp8Gemm>();
  }
  ThreadPool pool_{0};
  std::unique_ptr<cuda::Fp8Gemm> gemm_;
};

// ---- the encoder (host only; in this GPU test file because it uses CUDA's header) ----

// r1::float_to_e4m3 against CUDA's host emulation of the conversion instruction the quantize
// kernel uses (__nv_cvt_float_to_fp8, __NV_SATFINITE): a sweep of float bit patterns and every
// neighbour of the codes' midpoints.
TEST(Fp8Encode, MatchesCudaHostConversion) {
  auto check = [](float f) {
    const int cuda = __nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3);
    ASSERT_EQ(int(float_to_e4m3(f)), cuda) << "value " << f << " bits " << std::hex << float_to_bits(f);
  };
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 65521) check(bits_to_float(uint32_t(bits)));
  for (int code = 0; code < 0x7E; ++code) {
    const float mid = (e4m3_to_float(uint8_t(code)) + e4m3_to_float(uint8_t(code + 1))) / 2;
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      check(f);
      check(-f);
    }
  }
  for (float f : {0.0f, -0.0f, 448.0f, 464.0f, 465.0f, 1e30f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(), 1e-40f})
    check(f);
}

// ---- quantize_fp8 ----

void check_quantize(const std::vector<float>& x, int rows, int in, const std::vector<int>* offsets) {
  const std::vector<int> one_group{0, rows};
  const std::vector<int>& offs = offsets ? *offsets : one_group;
  const int groups = int(offs.size()) - 1;
  const Quantized expected = quantize_reference(x, in, offs);
  const int bound = cuda::fp8_padded_rows_bound(rows, groups);
  DeviceVector<float> dx(x.empty() ? std::vector<float>{0} : x);
  DeviceVector<int> doffsets(offs), dpadded(size_t(groups) + 1, -1);
  // Sentinels: anything the kernel leaves unwritten shows up as a mismatch below.
  DeviceVector<uint8_t> codes(size_t(bound) * in, 0xEE);
  DeviceVector<float> scales(size_t(bound) * blocks_of_128(in), -7.0f);
  cuda::quantize_fp8(dx.get(), rows, in, offsets ? doffsets.get() : nullptr, groups, dpadded.get(), codes.get(),
                     scales.get(), nullptr);
  const std::string what = "rows " + std::to_string(rows) + " in " + std::to_string(in) + " groups " + std::to_string(groups);
  ASSERT_EQ(dpadded.host(), expected.padded) << what;
  std::vector<uint8_t> got_codes = codes.host();
  std::vector<float> got_scales = scales.host();
  got_codes.resize(expected.codes.size());
  got_scales.resize(expected.scales.size());
  for (size_t i = 0; i < expected.codes.size(); ++i)
    ASSERT_EQ(int(got_codes[i]), int(expected.codes[i])) << what << ": code " << i << " (row " << i / in << ")";
  for (size_t i = 0; i < expected.scales.size(); ++i)
    ASSERT_EQ(float_to_bits(got_scales[i]), float_to_bits(expected.scales[i])) << what << ": scale " << i;
}

TEST_F(CudaFp8, QuantizeMatchesCpuReferenceBitForBit) {
  // One group: partial last blocks (320, 100), `in` not a multiple of 4 (100: the scalar path),
  // rows not multiples of 4 (pad rows), R1's widths.
  for (auto [rows, in] : {std::pair{1, 128}, {7, 320}, {130, 7168}, {33, 100}, {5, 2048}, {4, 512}}) {
    std::vector<float> x = test_activations(rows, in, 11 + rows);
    // Row 2's first block: one float-subnormal value, so small that amax / 448 underflows to 0 and
    // the scale becomes 1 (codes 0).
    if (rows > 2)
      for (int k = 0; k < std::min(in, 128); ++k) x[size_t(2) * in + k] = k == 1 ? 1e-43f : 0.0f;
    check_quantize(x, rows, in, nullptr);
  }
  // Groups with empty ones, counts not multiples of 4, a trailing empty group.
  const std::vector<int> offsets{0, 5, 5, 133, 136, 136, 137};
  check_quantize(test_activations(137, 512, 3), 137, 512, &offsets);
  const std::vector<int> trailing{0, 3, 3};
  check_quantize(test_activations(3, 7168, 4), 3, 7168, &trailing);
  const std::vector<int> all_empty{0, 0, 0};
  check_quantize({}, 0, 256, &all_empty);
}

// ---- the GEMM ----

TEST_F(CudaFp8Gemm, SupportedSaysWhichWeightsItTakes) {
  Fp8Weight w(256, 512, 1);
  DeviceFp8Weight dw(w);
  EXPECT_TRUE(cuda::fp8_gemm_supported(dw.view, 1));
  EXPECT_TRUE(cuda::fp8_gemm_supported(dw.view, 1000));
  EXPECT_FALSE(cuda::fp8_gemm_supported(dw.view, 0));
  WeightView v = dw.view;
  v.type = WeightType::bf16;
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
  v = dw.view, v.in = 500;  // rows of 500 bytes: not 16-byte multiples
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
  v = dw.view, v.out = 200;  // float32 output rows of 800 bytes, and M not a multiple of 16
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
  v = dw.view, v.scale_inv = nullptr;
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
  v = dw.view, v.block = 64;
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
  v = dw.view, v.data = static_cast<const uint8_t*>(dw.view.data) + 1;
  EXPECT_FALSE(cuda::fp8_gemm_supported(v, 1));
}

// (1) against the double reference on the CPU's quantization (uploaded, so that this checks the
// GEMM and its layouts alone), and (2) the whole fast path — quantize_fp8 then the GEMM — against
// the exact float32 path. R1's expert shapes, a small one, and one whose `in` is not a multiple of
// 128 (3 scale blocks: the weight scales get padded to 4 per row).
TEST_F(CudaFp8Gemm, MatchesReferenceAndExactPathForEveryShape) {
  constexpr int kMaxRows = 1000;
  for (auto [out, in] : {std::pair{256, 512}, {2048, 7168}, {7168, 2048}, {384, 320}}) {
    Fp8Weight w(out, in, uint32_t(out + in));
    DeviceFp8Weight dw(w);
    ASSERT_TRUE(cuda::fp8_gemm_supported(dw.view, 1)) << out << "x" << in;
    DeviceVector<WeightView> dviews(std::vector<WeightView>{dw.view});
    const std::vector<float> x = test_activations(kMaxRows, in, 21);
    // Rows are independent, so one reference over all rows serves every prefix below.
    const Quantized q_all = quantize_reference(x, in, {0, kMaxRows});
    const Reference ref = reference_grouped(q_all, x, {0, kMaxRows}, {&w}, pool_);
    for (int rows : {1, 7, 128, kMaxRows}) {
      const std::string what = std::to_string(out) + "x" + std::to_string(in) + " rows " + std::to_string(rows);
      const size_t n = size_t(rows) * out;
      // (1)
      const std::vector<float> xr(x.begin(), x.begin() + size_t(rows) * in);
      const Quantized q = quantize_reference(xr, in, {0, rows});
      DeviceVector<uint8_t> dcodes(q.codes);
      DeviceVector<float> dscales(q.scales), dy(n + out, 7.0f);  // one guard row past the end
      gemm_->linear(dw.view, rows, dcodes.get(), dscales.get(), dy.get(), nullptr);
      std::vector<float> y = dy.host();
      for (size_t i = n; i < n + out; ++i) ASSERT_EQ(y[i], 7.0f) << what << ": wrote past the last row";
      y.resize(n);
      EXPECT_LT(relative_max_error(y, to_floats(ref.y, n)), 1e-3) << what;
      // (2)
      const int bound = cuda::fp8_padded_rows_bound(rows, 1);
      DeviceVector<float> dx(xr), dfast(n), dexact(n);
      DeviceVector<uint8_t> xq(size_t(bound) * in);
      DeviceVector<float> xs(size_t(bound) * blocks_of_128(in));
      DeviceVector<int> padded(2);
      cuda::quantize_fp8(dx.get(), rows, in, nullptr, 1, padded.get(), xq.get(), xs.get(), nullptr);
      gemm_->linear(dw.view, rows, xq.get(), xs.get(), dfast.get(), nullptr);
      cuda::grouped_linear(dviews.get(), dw.view, nullptr, 1, rows, dx.get(), dexact.get(), nullptr);
      Reference prefix{std::vector<double>(ref.y.begin(), ref.y.begin() + n),
                       std::vector<double>(ref.abs_dot.begin(), ref.abs_dot.begin() + n),
                       std::vector<double>(ref.scale_dot.begin(), ref.scale_dot.begin() + n)};
      expect_within_quantization_bound(dfast.host(), dexact.host(), prefix, what);
    }
  }
}

// MoE: one weight per expert, empty experts skipped, experts whose row counts are not multiples of
// 4 (their padded results spill into the next expert's rows, which that expert then overwrites;
// the last one's go through a scratch buffer), and nothing written past the last row.
TEST_F(CudaFp8Gemm, GroupedMatchesReferenceWithEmptyAndOddExperts) {
  const int out = 256, in = 512;
  for (const std::vector<int>& offsets : {std::vector<int>{0, 5, 5, 133, 136, 136, 137, 137},
                                          std::vector<int>{0, 6, 6}, std::vector<int>{0, 4, 4, 12},
                                          std::vector<int>{0, 0, 0}}) {
    const int groups = int(offsets.size()) - 1, rows = offsets.back();
    std::vector<std::unique_ptr<Fp8Weight>> weights;
    std::vector<std::unique_ptr<DeviceFp8Weight>> device;
    std::vector<const Fp8Weight*> host_weights;
    std::vector<WeightView> views;
    for (int g = 0; g < groups; ++g) {
      weights.push_back(std::make_unique<Fp8Weight>(out, in, 100 + g));
      device.push_back(std::make_unique<DeviceFp8Weight>(*weights.back()));
      host_weights.push_back(weights.back().get());
      views.push_back(device.back()->view);
    }
    const std::vector<float> x = test_activations(std::max(rows, 1), in, 31);
    const Quantized q = quantize_reference(x, in, offsets);
    const int bound = cuda::fp8_padded_rows_bound(rows, groups);
    DeviceVector<float> dx(x), dy(size_t(rows + 1) * out, 7.0f);
    DeviceVector<int> doffsets(offsets), dpadded(size_t(groups) + 1);
    DeviceVector<uint8_t> xq(std::max<size_t>(1, size_t(bound) * in));
    DeviceVector<float> xs(std::max<size_t>(1, size_t(bound) * blocks_of_128(in)));
    cuda::quantize_fp8(dx.get(), rows, in, doffsets.get(), groups, dpadded.get(), xq.get(), xs.get(), nullptr);
    gemm_->grouped(views.data(), offsets.data(), groups, xq.get(), xs.get(), dy.get(), nullptr);
    std::vector<float> y = dy.host();
    const std::string what = "offsets ending at " + std::to_string(rows) + ", " + std::to_string(groups) + " groups";
    for (size_t i = size_t(rows) * out; i < y.size(); ++i) ASSERT_EQ(y[i], 7.0f) << what << ": wrote past the last row";
    if (rows == 0) continue;
    y.resize(size_t(rows) * out);
    const Reference ref = reference_grouped(q, x, offsets, host_weights, pool_);
    EXPECT_LT(relative_max_error(y, to_floats(ref.y, y.size())), 1e-3) << what;
  }
}

}  // namespace
}  // namespace r1
