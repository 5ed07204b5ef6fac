// The CPU's fast numerics (issue 10): the AVX512-BF16 kernels against their scalar reference at
// edge sizes, bit-for-bit batch invariance, the distance from exact numerics that the BF16
// rounding of the activations allows, and the fidelity bar on the trained demo model (the tiny
// random golden checkpoints are chaotic under any rounding): teacher-forced logits keep cosine
// >= 0.999 with exact numerics, and greedy accuracy stays within 1 point.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/simd/bf16_kernels.h"
#include "demo_problems.h"
#include "engine/engine.h"
#include "engine/score.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "r1/number_formats.h"
#include "random_weights.h"
#include "run_command.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using simd::Bf16Kernels;
using simd::Isa;
using simd::Matrix;
using simd::random_matrix;
using simd::Rows;
using simd::WeightType;

#define R1_REQUIRE_BF16()                                                                 \
  if (!simd::bf16_kernels_for(Isa::avx512)) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI"; \
  const Bf16Kernels& fast = *simd::bf16_kernels_for(Isa::avx512)

float weight_value(const Rows& w, int o, int i) {  // scaled, exact
  const int64_t at = int64_t(o) * (w.stride ? w.stride : w.in) + i;
  if (w.type == WeightType::bf16) return bf16_to_float(static_cast<const uint16_t*>(w.data)[at]);
  return e4m3_to_float(static_cast<const uint8_t*>(w.data)[at]) *
         w.scales[int64_t((w.row0 + o) / w.block) * w.scale_cols + (w.col0 + i) / w.block];
}

// Σ|w·x| over a row: the scale of the rounding errors of any summation order.
double magnitude(const Rows& w, int o, const float* x) {
  double m = 0;
  for (int i = 0; i < w.in; ++i) m += std::fabs(double(weight_value(w, o, i)) * x[i]);
  return m;
}

const WeightType kTypes[] = {WeightType::fp8, WeightType::bf16};

TEST(CpuFastKernels, MatchReferenceAtEdgeSizes) {
  R1_REQUIRE_BF16();
  const Bf16Kernels& ref = *simd::bf16_kernels_for(Isa::portable);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  for (WeightType type : kTypes)
    for (int in : {1, 31, 32, 100, 128, 300, 2100})  // 2100: chunks of 1024 columns and a tail
      for (int out : {1, 5, 130})
        // Tiles straight from memory (up to 48 tokens: 1, 3, 7 and 48, groups of 6 and a rest),
        // the widened path (49), and a whole tile of tokens and a leftover.
        for (int tokens : {1, 3, 7, 48, 49, simd::kBf16TileTokens + 2}) {
          Matrix m = random_matrix(type, out, in, rng);
          std::vector<float> x(size_t(tokens) * in), want(size_t(tokens) * out), got(want.size());
          for (float& v : x) v = value(rng);
          std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
          ref.rows(m.rows, x.data(), tokens, 0, out, want.data(), scratch.data());
          fast.rows(m.rows, x.data(), tokens, 0, out / 2, got.data(), scratch.data());  // two ranges, as
          fast.rows(m.rows, x.data(), tokens, out / 2, out, got.data(), scratch.data());  // the pool splits
          for (int t = 0; t < tokens; ++t)
            for (int o = 0; o < out; ++o) {
              const size_t at = size_t(t) * out + o;
              // float32 sums of the same BF16 products in another order (the reference adds in double)
              ASSERT_NEAR(got[at], want[at], 2e-6 * magnitude(m.rows, o, x.data() + size_t(t) * in) + 1e-30)
                  << "type " << int(type) << " in " << in << " out " << out << " tokens " << tokens;
            }
        }
}

// `product` on `on` (m's weights as they are, or packed) for 5 tokens of normal values against a
// double product on m, each within (2^step_exponent + 1e-6) · Σ|w·x|.
using Product = decltype(&Bf16Kernels::rows);
void expect_within_step_of_exact(const Bf16Kernels& fast, Product product, const Matrix& m, const Rows& on,
                                 int step_exponent, std::mt19937& rng) {
  std::normal_distribution<float> value(0.0f, 1.0f);
  const int out = m.rows.out, in = m.rows.in, tokens = 5;
  std::vector<float> x(size_t(tokens) * in), y(size_t(tokens) * out);
  for (float& v : x) v = value(rng);
  std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
  (fast.*product)(on, x.data(), tokens, 0, out, y.data(), scratch.data());
  double worst = 0;
  for (int t = 0; t < tokens; ++t)
    for (int o = 0; o < out; ++o) {
      double exact = 0;
      for (int i = 0; i < in; ++i) exact += double(weight_value(m.rows, o, i)) * x[size_t(t) * in + i];
      const double bound = (std::ldexp(1.0, step_exponent) + 1e-6) * magnitude(m.rows, o, x.data() + size_t(t) * in);
      ASSERT_LE(std::fabs(y[size_t(t) * out + o] - exact), bound) << "type " << int(m.rows.type);
      worst = std::max(worst, std::fabs(y[size_t(t) * out + o] - exact) / bound);
    }
  std::printf("  type %d: worst error %.3f of the bound\n", int(m.rows.type), worst);
}

// Against exact products: each activation is rounded to BF16 once (relative error <= 2^-8), so
// |fast - exact| <= 2^-8 · Σ|w·x|, plus float32 rounding.
TEST(CpuFastKernels, WithinTheBf16RoundingOfExactProducts) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(6);
  for (WeightType type : kTypes) {
    const Matrix m = random_matrix(type, 64, 7168, rng);
    ASSERT_NO_FATAL_FAILURE(expect_within_step_of_exact(fast, &Bf16Kernels::rows, m, m.rows, -8, rng));
  }
}

// An output's bits do not depend on the tokens beside it nor on the row split: a tile of tokens
// and 2 more (by the decode path), 133 rows (scale blocks, groups of 4 and leftovers), rows
// shorter and longer than a column chunk.
TEST(CpuFastKernels, BatchInvariant) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int out = 133, tokens = simd::kBf16TileTokens + 2;
  for (int in : {300, 2100})
    for (WeightType type : kTypes) {
      Matrix m = random_matrix(type, out, in, rng);
      std::vector<float> x(size_t(tokens) * in), batched(size_t(tokens) * out), alone(out);
      std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
      for (float& v : x) v = value(rng);
      fast.rows(m.rows, x.data(), tokens, 0, 61, batched.data(), scratch.data());
      fast.rows(m.rows, x.data(), tokens, 61, out, batched.data(), scratch.data());
      for (int t = 0; t < tokens; ++t) {
        fast.rows(m.rows, x.data() + size_t(t) * in, 1, 0, out, alone.data(), scratch.data());
        for (int o = 0; o < out; ++o)
          ASSERT_EQ(alone[o], batched[size_t(t) * out + o])
              << "type " << int(type) << " in " << in << " token " << t << " row " << o;
      }
    }
}

// The same matrix packed in panels (bf16_kernels.h), with its own bytes and scales (it may
// outlive m: the scales of a temporary had been read after it was freed, NaN now and then).
struct PackedMatrix {
  std::vector<uint8_t> data;
  std::vector<float> scales;
  Rows rows;
};
PackedMatrix packed(const Matrix& m) {
  PackedMatrix p{m.data, m.scales, m.rows};
  p.rows.data = p.data.data();
  if (!p.scales.empty()) p.rows.scales = p.scales.data();
  EXPECT_TRUE(simd::can_pack(p.rows));
  simd::pack_panels(p.rows, 0, p.rows.out / simd::kPanelWidth);
  p.rows.panels = true;
  return p;
}

// The kernels' packing (32-bit gathers) against the portable one, byte for byte.
TEST(CpuFastKernels, PackMatchesThePortablePacking) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(11);
  for (WeightType type : kTypes)
    for (int in : {32, 96, 7168})
      for (int out : {16, 48}) {
        const Matrix m = random_matrix(type, out, in, rng);
        std::vector<uint8_t> want = m.data, got = m.data;
        Rows rows = m.rows;
        rows.data = want.data();
        simd::pack_panels(rows, 0, out / simd::kPanelWidth);
        rows.data = got.data();
        fast.pack(rows, 0, 1);  // in two ranges, as the pool splits
        fast.pack(rows, 1, out / simd::kPanelWidth);
        ASSERT_TRUE(got == want) << "type " << int(type) << " in " << in << " out " << out;
      }
}

// m packed, through `fast`, against the reference on m for `tokens` random tokens, the rows split in two calls
// (as the pool splits). Each output is one float32 chain over the column pairs: recursive
// summation errs by at most (pairs + 1) · 2^-24 · Σ|w·x| (split: two chains and their sum).
void expect_panels_match_reference(const Bf16Kernels& fast, const Matrix& m, int tokens, std::mt19937& rng,
                                   const std::string& what, bool split = false) {
  const Bf16Kernels& ref = *simd::bf16_kernels_for(Isa::portable);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int out = m.rows.out, in = m.rows.in;
  const PackedMatrix p = packed(m);
  std::vector<float> x(size_t(tokens) * in), want(size_t(tokens) * out), got(want.size(), -1.0f);
  for (float& v : x) v = value(rng);
  std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
  const auto product = split ? &Bf16Kernels::split_rows : &Bf16Kernels::rows;
  (ref.*product)(m.rows, x.data(), tokens, 0, out, want.data(), scratch.data());
  const int first_rows = out / 2 + 3;
  (fast.*product)(p.rows, x.data(), tokens, 0, first_rows, got.data(), scratch.data());
  (fast.*product)(p.rows, x.data(), tokens, first_rows, out, got.data(), scratch.data());
  for (int t = 0; t < tokens; ++t)
    for (int o = 0; o < out; ++o) {
      const size_t at = size_t(t) * out + o;
      const double bound = (in / 2 + 2) * std::ldexp(1.0, -24) * magnitude(m.rows, o, x.data() + size_t(t) * in);
      ASSERT_NEAR(got[at], want[at], bound + 1e-30) << what << " tokens " << tokens << " row " << o;
    }
}

// Panels against the reference on the row-major matrix, at 16-row and 32-column edges: one
// panel, a scale block and a leftover panel, rows split off the panels (as the pool splits);
// one token (4 panels a tile), a few (2 panels), 12 (one group), 13 and 32 (groups of a tile
// streamed whole), 33 (column chunks), a tile of tokens and 2 more.
TEST(CpuFastKernels, PanelsMatchReferenceAtEdgeSizes) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(9);
  for (WeightType type : kTypes)
    for (int in : {32, 96, 544, 1056})  // 1056: four chunks of 256 pairs and a rest
      for (int out : {16, 48, 160})
        for (int tokens : {1, 3, 12, 13, 32, 33, simd::kBf16TileTokens + 2})
          ASSERT_NO_FATAL_FAILURE(expect_panels_match_reference(
              fast, random_matrix(type, out, in, rng), tokens, rng,
              "type " + std::to_string(int(type)) + " in " + std::to_string(in) + " out " + std::to_string(out)));
}

// Activations split in hi and lo (split_rows), at the same edges: one token (4 panels a tile),
// 2 to 6 (a group of 12 rows), 7 (two groups), 16 (a call's tile) and 17 and 40 (several).
TEST(CpuFastKernels, SplitPanelsMatchReferenceAtEdgeSizes) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(16);
  for (WeightType type : kTypes)
    for (int in : {32, 96, 544})
      for (int out : {16, 48, 160})
        for (int tokens : {1, 2, 6, 7, 16, 17, 40})
          ASSERT_NO_FATAL_FAILURE(expect_panels_match_reference(
              fast, random_matrix(type, out, in, rng), tokens, rng,
              "split, type " + std::to_string(int(type)) + " in " + std::to_string(in) + " out " + std::to_string(out),
              true));
}

// Against exact products: hi carries an activation to within 2^-8 of it, lo the rest to within
// 2^-8 of that, so |split - exact| <= 2^-16 · Σ|w·x|, plus float32 rounding.
TEST(CpuFastKernels, SplitWithin2ToMinus16OfExactProducts) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(17);
  for (WeightType type : kTypes) {
    const Matrix m = random_matrix(type, 64, 7168, rng);
    const PackedMatrix p = packed(m);
    ASSERT_NO_FATAL_FAILURE(expect_within_step_of_exact(fast, &Bf16Kernels::split_rows, m, p.rows, -16, rng));
  }
}

// Rows of 4096-8192 columns take many tokens as tiles streaming whole rows (bf16_rows_avx512.cpp):
// a tile and a rest, and more tiles than one.
TEST(CpuFastKernels, PanelsOfHiddenWidthMatchReference) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(15);
  for (WeightType type : kTypes)
    for (int tokens : {33, 70})
      ASSERT_NO_FATAL_FAILURE(expect_panels_match_reference(fast, random_matrix(type, 48, 4160, rng), tokens, rng,
                                                            "type " + std::to_string(int(type)) + " in 4160"));
}

// Every FP8 scale block can_pack takes (32 to 512 rows and columns; checkpoints have 128), over
// more than one span of rows, one token, a few and a tile's worth and more.
TEST(CpuFastKernels, PanelsTakeEveryScaleBlockThatPacks) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(13);
  for (int block : {32, 64, 256, 512})
    for (int tokens : {1, 5, simd::kBf16TileTokens + 2})
      ASSERT_NO_FATAL_FAILURE(expect_panels_match_reference(fast, random_matrix(WeightType::fp8, 1056, 1024, rng, block),
                                                            tokens, rng, "block " + std::to_string(block)));
}

// Panels give each output the same bits whatever the tokens beside it and the row split, with
// activations rounded (rows) and split (split_rows).
TEST(CpuFastKernels, PanelsBatchInvariant) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(10);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int out = 160, in = 1056, tokens = simd::kBf16TileTokens + 2;
  for (const auto product : {&Bf16Kernels::rows, &Bf16Kernels::split_rows}) {
    for (WeightType type : kTypes) {
      const PackedMatrix p = packed(random_matrix(type, out, in, rng));
      std::vector<float> x(size_t(tokens) * in), batched(size_t(tokens) * out), alone(out), few(size_t(3) * out);
      std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
      for (float& v : x) v = value(rng);
      (fast.*product)(p.rows, x.data(), tokens, 0, 37, batched.data(), scratch.data());
      (fast.*product)(p.rows, x.data(), tokens, 37, out, batched.data(), scratch.data());
      for (int t = 0; t + 3 <= tokens; t += 3) {
        (fast.*product)(p.rows, x.data() + size_t(t) * in, 3, 0, out, few.data(), scratch.data());
        for (int u = t; u < t + 3; ++u) {
          (fast.*product)(p.rows, x.data() + size_t(u) * in, 1, 0, out, alone.data(), scratch.data());
          for (int o = 0; o < out; ++o) {
            ASSERT_EQ(alone[o], batched[size_t(u) * out + o]) << "type " << int(type) << " token " << u << " row " << o;
            ASSERT_EQ(alone[o], few[size_t(u - t) * out + o]) << "type " << int(type) << " token " << u << " row " << o;
          }
        }
      }
    }
  }
}

// A rank's shard of an FP8 matrix: rows from mid-block, columns from a block boundary; a column
// phase off the 32-value step is refused (the caller then takes the exact kernels).
TEST(CpuFastKernels, ViewsOfAMatrixMatchTheReference) {
  R1_REQUIRE_BF16();
  const Bf16Kernels& ref = *simd::bf16_kernels_for(Isa::portable);
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  const int rows = 300, cols = 400;
  Matrix m = random_matrix(WeightType::fp8, rows, cols, rng);
  Rows view = m.rows;
  const int row0 = 70, col0 = 128 + 32, out = 150, in = 200;
  view.data = m.data.data() + int64_t(row0) * cols + col0;
  view.out = out, view.in = in, view.stride = cols, view.row0 = row0, view.col0 = col0;
  ASSERT_TRUE(simd::bf16_can_run(view));
  const int tokens = 9;
  std::vector<float> x(size_t(tokens) * in), want(size_t(tokens) * out), got(want.size());
  for (float& v : x) v = value(rng);
  std::vector<uint16_t> scratch(simd::bf16_scratch_values(in));
  ref.rows(view, x.data(), tokens, 0, out, want.data(), scratch.data());
  fast.rows(view, x.data(), tokens, 0, out, got.data(), scratch.data());
  for (int t = 0; t < tokens; ++t)
    for (int o = 0; o < out; ++o)
      ASSERT_NEAR(got[size_t(t) * out + o], want[size_t(t) * out + o],
                  2e-6 * magnitude(view, o, x.data() + size_t(t) * in) + 1e-30);
  view.col0 = 45;
  EXPECT_FALSE(simd::bf16_can_run(view));
}

// A view of kv_b's rows (a head's W_UK or W_UV) copied as a whole matrix the panels take:
// transposed, a row product on it is the view's column product (rounded activations, as W_UK
// absorbs); as it is, the view's row product (split activations, as W_UV maps out). A view whose
// rows straddle FP8 scale blocks is refused.
TEST(CpuFastKernels, CopiesGiveTheColumnAndRowProducts) {
  R1_REQUIRE_BF16();
  std::mt19937 rng(14);
  std::normal_distribution<float> value(0.0f, 1.0f);
  struct Case { int stored_rows, cols, row0, rows; };
  for (WeightType type : kTypes)
    for (const Case c : {Case{512, 512, 256, 128}, Case{256, 64, 64, 32}})
      for (bool transpose : {true, false}) {
        Matrix m = random_matrix(type, c.stored_rows, c.cols, rng);
        Rows view = m.rows;
        const int element = type == WeightType::fp8 ? 1 : 2;
        view.data = m.data.data() + int64_t(c.row0) * c.cols * element;
        view.out = c.rows, view.row0 = c.row0, view.stride = c.cols;
        std::vector<uint8_t> bytes(size_t(c.rows) * c.cols * element);
        std::vector<float> scales(copied_scales(view));
        Rows copy = copy_rows(view, transpose, bytes.data(), scales.data());
        ASSERT_TRUE(copy.data && simd::can_pack(copy));
        ASSERT_EQ(copy.out, transpose ? c.cols : c.rows);
        ASSERT_EQ(copy.in, transpose ? c.rows : c.cols);
        for (int r = 0; r < c.rows; ++r)
          for (int col = 0; col < c.cols; ++col)
            ASSERT_EQ(transpose ? weight_value(copy, col, r) : weight_value(copy, r, col), weight_value(view, r, col));
        simd::pack_panels(copy, 0, copy.out / simd::kPanelWidth);
        copy.panels = true;
        // Rounded activations err by 2^-8 of Σ|w·x| at most, split ones by 2^-16.
        const double step = std::ldexp(1.0, transpose ? -8 : -16);
        for (int tokens : {1, 7, 40}) {
          std::vector<float> x(size_t(tokens) * copy.in), y(size_t(tokens) * copy.out);
          for (float& v : x) v = value(rng);
          std::vector<uint16_t> scratch(simd::bf16_scratch_values(copy.in));
          (transpose ? fast.rows : fast.split_rows)(copy, x.data(), tokens, 0, copy.out, y.data(), scratch.data());
          for (int t = 0; t < tokens; ++t)
            for (int o = 0; o < copy.out; ++o) {
              double exact = 0, magnitude = 0;
              for (int i = 0; i < copy.in; ++i) {
                const float w = transpose ? weight_value(view, i, o) : weight_value(view, o, i);
                const double term = double(w) * x[size_t(t) * copy.in + i];
                exact += term, magnitude += std::fabs(term);
              }
              ASSERT_NEAR(y[size_t(t) * copy.out + o], exact, (step + 1e-6) * magnitude + 1e-30)
                  << "type " << int(type) << " rows " << c.rows << " tokens " << tokens << " transposed " << transpose;
            }
        }
      }
  Matrix m = random_matrix(WeightType::fp8, 256, 64, rng);
  Rows straddling = m.rows;
  straddling.data = m.data.data() + 64 * 64;
  straddling.out = 128, straddling.row0 = 64, straddling.stride = 64;
  std::vector<uint8_t> bytes(128 * 64);
  std::vector<float> scales(copied_scales(straddling));
  for (bool transpose : {true, false}) EXPECT_EQ(copy_rows(straddling, transpose, bytes.data(), scales.data()).data, nullptr);
}

// The engine in fast numerics: 16 sequences decoding together (pages of 4 positions) give each
// sequence exactly the greedy tokens it gets alone; with the
// weights in rows (the files mapped) and packed in panels (read into large pages, as the CLI does).
class CpuFastEngine : public testing::TestWithParam<Residency> {};
INSTANTIATE_TEST_SUITE_P(Layouts, CpuFastEngine, testing::Values(Residency::mapped, Residency::large_pages));
TEST_P(CpuFastEngine, BatchOf16EqualsOneAtATime) {
  if (!fast_numerics_available()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI";
  auto model = Model::load(std::string(R1_TEST_DATA) + "/golden/tiny-v3-fp8", GetParam());
  CpuBackend backend(model->config, model->weights, 2, Numerics::fast);
  EXPECT_EQ(model->weights.layers.back().o_proj.weight->panels, GetParam() == Residency::large_pages);
  std::mt19937 rng(9);
  std::vector<std::vector<int>> prompts(16);
  for (size_t i = 0; i < prompts.size(); ++i) {
    prompts[i].resize(3 + 5 * i % 23);
    for (int& id : prompts[i]) id = 2 + int(rng() % uint32_t(model->config.vocab_size - 2));
  }
  auto generate = [&](int max_batch, int prefill_chunk, int page_size) {
    EngineOptions options;
    options.max_batch = max_batch, options.context_length = 128;
    options.prefill_chunk = prefill_chunk, options.page_size = page_size;
    Engine engine(backend, model->config, nullptr, options);
    std::vector<std::vector<int>> tokens(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      Request r;
      r.prompt = prompts[i];
      r.sampling.temperature = 0;
      r.max_tokens = 12;
      r.on_finish = [&tokens, i](const Generation& g) { tokens[i] = g.tokens; };
      engine.submit(std::move(r));
    }
    engine.run();
    return tokens;
  };
  // The same prefill chunk both ways: a chunk's size can change how its tokens attend (the
  // expanded or the absorbed form, cpu_attention.cpp), the sequences beside it cannot.
  for (int chunk : {7, 32}) {
    const auto alone = generate(1, chunk, kDefaultPageSize), batched = generate(16, chunk, 4);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batched[i], alone[i]) << "prompt " << i << ", chunks of " << chunk;
      EXPECT_EQ(alone[i].size(), 12u);
    }
  }
}

// Positions whose MoE routing differs between two runs (any layer): a token whose router
// scores sit within rounding distance of a tie picks other experts when the activations move
// by a BF16 rounding.
std::vector<bool> flipped_positions(const std::vector<CpuBackend::Route>& a, const std::vector<CpuBackend::Route>& b,
                                    size_t positions) {
  std::vector<bool> flipped(positions, false);
  EXPECT_EQ(a.size(), b.size());
  auto key = [](const CpuBackend::Route& r) { return std::pair(r.layer, r.position); };
  std::map<std::pair<int, int>, std::vector<int>> first;
  for (const auto& r : a) first[key(r)] = r.experts;
  for (const auto& r : b)
    if (first[key(r)] != r.experts) flipped[size_t(r.position)] = true;
  return flipped;
}

// Teacher-forced logits on the trainer's sequences, fast against exact, at every position, on
// the prefill path (whole sequences a call) and the decode path (a token a call). Issue 10's
// bar, cosine >= 0.999, is checked at every position: it is what lets `--numerics auto` (the
// default of chat, run and bench) pick fast. At a position where a routing decision flipped (a
// token whose router scores sit within rounding distance of a tie: 1 of 296 on 2026-11-24 with
// q_a and W_UK in BF16; which positions flip follows the rounding and the summation order), the
// flip is a discrete choice rather than an error of the numerics: there the bar holds with
// exact's experts given to the fast run (cosine 0.999998 where the raw one is 0.9894), and the
// raw cosine is printed beside it. Flips must stay rare.
TEST(CpuFast, DemoModelLogitsFollowExact) {
  if (!fast_numerics_available()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI";
  // Two copies: the fast backend packs its weights in panels (read into large pages, as the CLI
  // reads them), which the exact kernels cannot read.
  auto model = Model::load(kDemoModel.string()), packed = Model::load(kDemoModel.string(), Residency::large_pages);
  CpuBackend exact(model->config, model->weights, 2, Numerics::exact);
  CpuBackend fast(packed->config, packed->weights, 2, Numerics::fast);
  ASSERT_TRUE(packed->weights.lm_head.weight->panels);
  SafetensorsFile refs((kDemoModel / "trainer_logits.safetensors").string());
  const int vocab = model->config.vocab_size;
  int checked = 0;
  size_t positions = 0, flips = 0;
  for (int i = 0; refs.tensors().count(fmt::format("tokens_{}", i)); ++i, ++checked) {
    const TensorView& t = refs.tensors().at(fmt::format("tokens_{}", i));
    std::vector<int> tokens(size_t(t.numel()));
    std::memcpy(tokens.data(), t.data, t.bytes);
    std::vector<CpuBackend::Route> exact_routes, fast_routes;
    exact.record_routes(&exact_routes);
    const std::vector<float> want = teacher_forced_logits(exact, model->config, tokens, 0);
    exact.record_routes(nullptr);
    for (int chunk : {0, 1}) {
      fast_routes.clear();
      fast.record_routes(&fast_routes);
      const std::vector<float> got = teacher_forced_logits(fast, model->config, tokens, chunk);
      fast.record_routes(nullptr);
      const std::vector<bool> flipped = flipped_positions(exact_routes, fast_routes, tokens.size());
      const size_t n_flipped = size_t(std::count(flipped.begin(), flipped.end(), true));
      std::vector<float> same_routes;
      if (n_flipped > 0) {
        fast.force_routes(&exact_routes);
        same_routes = teacher_forced_logits(fast, model->config, tokens, chunk);
        fast.force_routes(nullptr);
      }
      double worst = 1, worst_flipped = 1, worst_flipped_raw = 1;
      for (size_t p = 0; p < tokens.size(); ++p) {
        const double c = cosine(got.data() + p * vocab, want.data() + p * vocab, vocab);
        if (!flipped[p]) {
          worst = std::min(worst, c);
          continue;
        }
        worst_flipped_raw = std::min(worst_flipped_raw, c);
        worst_flipped = std::min(worst_flipped, cosine(same_routes.data() + p * vocab, want.data() + p * vocab, vocab));
      }
      std::printf("  sequence %d (%zu tokens), chunk %d: worst cosine %.6f; %zu positions with a routing flip "
                  "(worst cosine there %.6f, %.6f with exact's experts)\n", i, tokens.size(), chunk, worst, n_flipped,
                  worst_flipped_raw, worst_flipped);
      EXPECT_GE(worst, 0.999) << "sequence " << i << " chunk " << chunk;
      EXPECT_GE(worst_flipped, 0.999) << "sequence " << i << " chunk " << chunk << ", with exact's experts where routing flipped";
      positions += tokens.size(), flips += n_flipped;
    }
  }
  EXPECT_GT(checked, 0);
  EXPECT_LE(flips, positions / 50) << "routing flips at more than 2% of positions";
}

// Greedy accuracy on fresh problems through `r1 bench`, fast against exact: within 1 point.
TEST(CpuFast, DemoModelAccuracyWithinOnePointOfExact) {
  if (!fast_numerics_available()) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI";
  const fs::path dir = fs::temp_directory_path() / fmt::format("r1_cpu_fast_{}", getpid());
  fs::create_directories(dir);
  const std::string problems = (dir / "problems.jsonl").string();
  const int count = 100;
  write_demo_problems(problems, count, 20261125);
  BenchScore scores[2];
  const char* modes[2] = {"exact", "fast"};
  for (int m = 0; m < 2; ++m)
    scores[m] = bench_problems(fmt::format("--model {} --device cpu --numerics {}", kDemoModel.string(), modes[m]),
                               problems, (dir / fmt::format("results_{}.jsonl", modes[m])).string(), 16);
  fs::remove_all(dir);
  ASSERT_EQ(scores[0].total, count);
  ASSERT_EQ(scores[1].total, count);
  EXPECT_LE(std::abs(scores[0].correct - scores[1].correct), 1);  // 1 point of 100
}

}  // namespace
}  // namespace r1
