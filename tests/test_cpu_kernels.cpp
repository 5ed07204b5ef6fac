// The SIMD row kernels (src/cpu/simd) against the portable reference, for every instruction
// set this CPU runs, every weight type, and edge sizes: 1 and 16 tokens, rows and columns not
// a multiple of the vector width or of the 128-column FP8 block.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/simd/kernels.h"
#include "cpu/vector_math.h"
#include "random_weights.h"

namespace r1::simd {
namespace {

std::vector<const Kernels*> simd_sets() {
  std::vector<const Kernels*> sets;
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::avx512_vbmi})
    if (const Kernels* k = kernels_for(isa)) sets.push_back(k);
  return sets;
}

const WeightType kTypes[] = {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::fp8};

TEST(CpuKernels, DecodeRowMatchesReferenceExactly) {
  std::mt19937 rng(1);
  const Kernels& ref = *kernels_for(Isa::portable);
  for (const Kernels* k : simd_sets())
    for (WeightType type : kTypes)
      for (int in : {1, 7, 16, 100, 128, 130, 300}) {
        Matrix m = random_matrix(type, 3, in, rng);
        std::vector<float> want(padded(in)), got(padded(in) + 1, -7.0f);
        ref.decode_row(m.rows, 2, want.data());
        k->decode_row(m.rows, 2, got.data());
        for (int i = 0; i < in; ++i)
          ASSERT_EQ(got[i], want[i]) << k->name << " type " << int(type) << " in " << in << " i " << i;
        EXPECT_EQ(got[in], -7.0f) << k->name << ": wrote past the row";
      }
}

TEST(CpuKernels, RowsMatchReferenceAtEdgeSizes) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const Kernels& ref = *kernels_for(Isa::portable);
  for (const Kernels* k : simd_sets())
    for (WeightType type : kTypes)
      for (int in : {1, 15, 64, 129, 300})
        for (int out : {1, 17, 130})
          for (int tokens : {1, 3, 16}) {
            Matrix m = random_matrix(type, out, in, rng);
            std::vector<float> x(size_t(tokens) * in), want(size_t(tokens) * out), got(want.size());
            for (float& v : x) v = value(rng);
            std::vector<float> scratch(scratch_floats(in), std::nanf(""));  // the kernels must not read it unwritten
            ref.rows(m.rows, x.data(), tokens, 0, out, want.data(), scratch.data());
            // In two ranges, as the thread pool splits it.
            k->rows(m.rows, x.data(), tokens, 0, out / 2, got.data(), scratch.data());
            k->rows(m.rows, x.data(), tokens, out / 2, out, got.data(), scratch.data());
            for (int t = 0; t < tokens; ++t)
              for (int o = 0; o < out; ++o) {
                std::vector<float> w(padded(in));
                ref.decode_row(m.rows, o, w.data());
                double magnitude = 0;  // Σ|w·x|: the scale of float32 rounding in any order
                for (int i = 0; i < in; ++i) magnitude += std::fabs(double(w[i]) * x[size_t(t) * in + i]);
                const size_t at = size_t(t) * out + o;
                ASSERT_NEAR(got[at], want[at], 1e-6 * magnitude + 1e-30)
                    << k->name << " type " << int(type) << " in " << in << " out " << out << " tokens " << tokens;
              }
          }
}

// Each output's summation order must not depend on the batch nor on how the rows are split
// between threads: a token alone and the same token among many give the same bits. 18 tokens ×
// 33 rows × 300 columns: one chunk, a tile of tokens and leftovers; 47 tokens × 20 rows × 1300
// columns: the weights streamed straight to the register tiles (direct_product) for 7 full
// groups of tokens and one of 5, over a full and a partial chunk; 70 tokens × 150 rows × 2200
// columns: full register tiles and leftover tokens and rows, two full kChunk chunks and a
// partial one, several row panels and an FP8 block row boundary at row 128, the rows split in
// ranges off the tile and panel sizes.
TEST(CpuKernels, RowsAreBatchInvariant) {
  static_assert(direct_product(47, 1300) && !direct_product(70, 2200), "both multi-token paths are covered");
  static_assert(1300 > kChunk && 2200 > 2 * kChunk && 2200 < 3 * kChunk, "the chunks the comment names");
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (auto [out, in, tokens] : {std::array{33, 300, 18}, std::array{20, 1300, 47}, std::array{150, 2200, 70}})
    for (const Kernels* k : simd_sets())
      for (WeightType type : kTypes) {
        Matrix m = random_matrix(type, out, in, rng);
        std::vector<float> x(size_t(tokens) * in), batched(size_t(tokens) * out), alone(out), scratch(scratch_floats(in), std::nanf(""));
        for (float& v : x) v = value(rng);
        for (int begin = 0, step = 1; begin < out; begin += step, step = step * 3 + 2)  // ranges of 1, 5, 17, 53, ...
          k->rows(m.rows, x.data(), tokens, begin, std::min(out, begin + step), batched.data(), scratch.data());
        for (int t = 0; t < tokens; ++t) {
          k->rows(m.rows, x.data() + size_t(t) * in, 1, 0, out, alone.data(), scratch.data());
          for (int o = 0; o < out; ++o)
            ASSERT_EQ(alone[o], batched[size_t(t) * out + o])
                << k->name << " type " << int(type) << " in " << in << " token " << t << " row " << o;
        }
      }
}

// A view of rows [row0, row0 + out) and columns [col0, col0 + in) of a stored matrix (a rank's
// shard), starting inside an FP8 scale block and off the vector width: its rows decode to the
// same values as those columns of the whole matrix's rows, and its products agree with them.
TEST(CpuKernels, ViewsOfAMatrixMatchTheWhole) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int rows = 300, cols = 333;
  std::vector<const Kernels*> sets = simd_sets();
  sets.push_back(kernels_for(Isa::portable));
  for (WeightType type : kTypes) {
    Matrix m = random_matrix(type, rows, cols, rng);
    const int bytes = type == WeightType::f32 ? 4 : type == WeightType::fp8 ? 1 : 2;
    for (auto [row0, col0, out, in] : {std::array{0, 111, 300, 111}, std::array{130, 45, 77, 200},
                                       std::array{7, 256, 20, 77}, std::array{0, 0, 300, 333}}) {
      Rows view = m.rows;
      view.data = m.data.data() + (int64_t(row0) * cols + col0) * bytes;
      view.out = out, view.in = in, view.stride = cols, view.row0 = row0, view.col0 = col0;
      const int tokens = 3;
      std::vector<float> x(size_t(tokens) * in), whole(padded(cols)), part(padded(in)), scratch(scratch_floats(in), std::nanf(""));
      for (float& v : x) v = value(rng);
      for (const Kernels* k : sets) {
        std::vector<float> y(size_t(tokens) * out), one(out);
        k->rows(view, x.data(), tokens, 0, out, y.data(), scratch.data());
        k->rows(view, x.data(), 1, 0, out, one.data(), scratch.data());
        for (int o = 0; o < out; ++o) {
          kernels_for(Isa::portable)->decode_row(m.rows, row0 + o, whole.data());
          k->decode_row(view, o, part.data());
          for (int i = 0; i < in; ++i)
            ASSERT_EQ(part[i], whole[col0 + i]) << k->name << " type " << int(type) << " row " << o << " col " << i;
          ASSERT_EQ(one[o], y[o]) << k->name << ": a view's products are not batch invariant";
          for (int t = 0; t < tokens; ++t) {
            double want = 0, magnitude = 0;
            for (int i = 0; i < in; ++i) {
              want += double(whole[col0 + i]) * x[size_t(t) * in + i];
              magnitude += std::fabs(double(whole[col0 + i]) * x[size_t(t) * in + i]);
            }
            ASSERT_NEAR(y[size_t(t) * out + o], want, 1e-6 * magnitude + 1e-30) << k->name << " type " << int(type);
          }
        }
      }
    }
  }
}

// FP8 decoded by table (avx512-vbmi) gives the same values in the same lanes as the integer
// decoding (avx512), so the same sums bit for bit: every code (random_matrix draws them all,
// subnormals included), one token (the table path) and several, widths off 64 and the chunk.
TEST(CpuKernels, Fp8ByTableGivesTheSameBits) {
  const Kernels* table = kernels_for(Isa::avx512_vbmi);
  const Kernels* integer = kernels_for(Isa::avx512);
  if (!table) GTEST_SKIP() << "this CPU lacks AVX512-VBMI";
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (int in : {64, 200, 1100, 7168})
    for (int tokens : {1, 5}) {
      const int out = 37;
      Matrix m = random_matrix(WeightType::fp8, out, in, rng);
      std::vector<float> x(size_t(tokens) * in), want(size_t(tokens) * out), got(want.size());
      std::vector<float> scratch(scratch_floats(in));
      for (float& v : x) v = value(rng);
      integer->rows(m.rows, x.data(), tokens, 0, out, want.data(), scratch.data());
      table->rows(m.rows, x.data(), tokens, 0, out, got.data(), scratch.data());
      for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(got[k], want[k]) << "in " << in << " tokens " << tokens << " at " << k;
    }
}

TEST(CpuKernels, ReadSumAddsEveryValue) {
  std::vector<float> v(4096);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 7);
  double want = 0;
  for (float f : v) want += f;
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512, Isa::avx512_vbmi}) {
    const Kernels* k = kernels_for(isa);
    if (!k) continue;
    for (int streams : {1, 2, 4, 8}) EXPECT_EQ(k->read_sum(v.data(), v.size(), streams), want) << k->name << " " << streams;
  }
}

TEST(CpuKernels, BestSetIsTheWidestThisCpuRuns) {
  const Kernels* widest = kernels_for(Isa::avx512_vbmi) ? kernels_for(Isa::avx512_vbmi)
                          : kernels_for(Isa::avx512) ? kernels_for(Isa::avx512)
                          : kernels_for(Isa::avx2) ? kernels_for(Isa::avx2)
                                                   : kernels_for(Isa::portable);
  EXPECT_EQ(&best_kernels(), widest);
  std::printf("row kernels in use: %s\n", best_kernels().name);
}

// exp_approx against the library's e^x over its whole range, 2 ulp (2.4e-7 relative), and its
// clamps: 0-ish below -87 (under float32's smallest normal), finite up to 88.
TEST(CpuKernels, ExpApproxIsWithinTwoUlp) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.001953125f) {  // 2^-9 steps: 89,600 points
    const double want = std::exp(double(x)), got = exp_approx(x);
    worst = std::max(worst, std::fabs(got - want) / want);
  }
  EXPECT_LE(worst, 2.4e-7);
  std::printf("exp_approx: worst relative error %.3g\n", worst);
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_LT(exp_approx(-1000.0f), 2e-38f);
  EXPECT_TRUE(std::isfinite(exp_approx(1000.0f)));
}

// The column product (the weight's rows summed: W_UK absorbing queries) of every SIMD set gives
// the portable reference's bits (one FMA chain per output over the rows in order), for every
// weight type, widths off the vector and block sizes, one and several tokens, and a view that
// starts inside an FP8 block in both directions; it is the product (double reference), and a
// token's outputs are the same bits alone as in a batch.
TEST(CpuKernels, ColumnsMatchReferenceBitForBit) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const Kernels& ref = *kernels_for(Isa::portable);
  for (WeightType type : kTypes)
    for (auto [rows, cols] : {std::array{1, 1}, std::array{5, 15}, std::array{128, 64}, std::array{130, 129},
                              std::array{64, 300}, std::array{128, 512}})
      for (int tokens : {1, 3, 7, 13}) {
        const int stored_rows = rows + 70, stored_cols = cols + 45;
        Matrix m = random_matrix(type, stored_rows, stored_cols, rng);
        const int bytes = type == WeightType::f32 ? 4 : type == WeightType::fp8 ? 1 : 2;
        for (auto [row0, col0] : {std::array{0, 0}, std::array{70, 45}}) {
          Rows view = m.rows;
          view.data = m.data.data() + (int64_t(row0) * stored_cols + col0) * bytes;
          view.out = rows, view.in = cols, view.stride = stored_cols, view.row0 = row0, view.col0 = col0;
          std::vector<float> x(size_t(tokens) * rows), want(size_t(tokens) * cols), scratch(column_scratch_floats(view, tokens));
          for (float& v : x) v = value(rng);
          ref.columns(view, x.data(), tokens, want.data(), scratch.data());
          std::vector<float> decoded(size_t(rows) * padded(cols));
          for (int r = 0; r < rows; ++r) ref.decode_row(view, r, decoded.data() + size_t(r) * padded(cols));
          for (int t = 0; t < tokens; ++t)
            for (int c = 0; c < cols; ++c) {
              double exact = 0, magnitude = 0;
              for (int r = 0; r < rows; ++r) {
                const double term = double(decoded[size_t(r) * padded(cols) + c]) * x[size_t(t) * rows + r];
                exact += term, magnitude += std::fabs(term);
              }
              ASSERT_NEAR(want[size_t(t) * cols + c], exact, 1e-6 * magnitude + 1e-30) << "type " << int(type);
            }
          for (const Kernels* k : simd_sets()) {
            std::vector<float> got(want.size(), std::nanf(""));
            k->columns(view, x.data(), tokens, got.data(), scratch.data());
            for (size_t i = 0; i < want.size(); ++i)
              ASSERT_EQ(got[i], want[i]) << k->name << " type " << int(type) << " rows " << rows << " cols " << cols
                                         << " tokens " << tokens << " view at " << row0 << "," << col0 << " i " << i;
            // Each token alone (streamed) gives the bits of the batch (13 tokens: the view decoded once).
            std::vector<float> alone(static_cast<size_t>(cols)), one_scratch(column_scratch_floats(view, 1));
            for (int t = 0; t < tokens; ++t) {
              k->columns(view, x.data() + size_t(t) * rows, 1, alone.data(), one_scratch.data());
              for (int c = 0; c < cols; ++c)
                ASSERT_EQ(alone[size_t(c)], got[size_t(t) * cols + c]) << k->name << " token " << t << " alone, column " << c;
            }
          }
        }
      }
}

}  // namespace
}  // namespace r1::simd
