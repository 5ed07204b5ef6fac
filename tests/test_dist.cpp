// Sharding on CPU ranks (src/dist): the plan, the in-process communicator with its abort and
// timeout paths, and the sharded engine against the unsharded one and DeepSeek's golden
// logits at world sizes 2, 4 and 3 (unequal expert counts), prefill and decode.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/error.h"
#include "dist/communicator.h"
#include "dist/plan.h"
#include "engine/score.h"
#include "golden_check.h"
#include "model/config.h"
#include "run_command.h"
#include "temp_files.h"

namespace r1 {
namespace {

const std::string kData = R1_TEST_DATA;

// ---- plan ----

TEST(Plan, SplitsTinyV3OverFourRanks) {
  const ModelConfig c = load_config(kData + "/golden/tiny-v3");  // 4 heads, 16 experts, vocab 2048
  const ShardPlan p = make_plan(c, 4);
  ASSERT_EQ(p.ranks.size(), 4u);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(p.ranks[r].heads, (Range{r, r + 1}));
    EXPECT_EQ(p.ranks[r].mlp, (Range{r * 128, (r + 1) * 128}));  // intermediate 512
    EXPECT_EQ(p.ranks[r].shared, (Range{r * 32, (r + 1) * 32}));  // 1 shared × 128
    EXPECT_EQ(p.ranks[r].experts, (Range{r * 4, (r + 1) * 4}));
    EXPECT_EQ(p.ranks[r].vocab, (Range{r * 512, (r + 1) * 512}));
  }
  std::vector<std::string> points;
  for (const CommPoint& cp : p.comms) points.push_back(cp.after);
  EXPECT_EQ(points, (std::vector<std::string>{"embed", "o_proj", "mlp.down_proj", "moe (routed + shared)", "lm_head"}));
  EXPECT_EQ(p.comms.back().op, Collective::all_gather);
  EXPECT_EQ(p.comms.back().values_per_token, 512);
}

TEST(Plan, UnequalExpertsAndOddWidths) {
  const ModelConfig c = load_config(kData + "/family/tiny-v3-odd");  // 3 heads, 8 experts, intermediate 333
  const ShardPlan p = make_plan(c, 3);
  EXPECT_EQ(p.ranks[0].experts, (Range{0, 3}));
  EXPECT_EQ(p.ranks[1].experts, (Range{3, 6}));
  EXPECT_EQ(p.ranks[2].experts, (Range{6, 8}));
  EXPECT_EQ(p.ranks[1].mlp, (Range{111, 222}));  // a split point inside a 128-column FP8 block
  EXPECT_EQ(p.ranks[2].vocab, (Range{200, 300}));
}

TEST(Plan, RangesCoverEverythingOnce) {
  for (int n : {1, 7, 16, 129280})
    for (int parts : {1, 2, 3, 8, 16}) {
      int next = 0;
      for (int i = 0; i < parts; ++i) {
        const Range r = split_range(n, parts, i);
        EXPECT_EQ(r.begin, next);
        EXPECT_LE(r.size(), n / parts + 1);
        EXPECT_GE(r.size(), n / parts);
        next = r.end;
      }
      EXPECT_EQ(next, n);
    }
}

TEST(Plan, RefusesHeadsTheRanksDoNotDivide) {
  const ModelConfig c = load_config(kData + "/golden/tiny-v3");
  try {
    make_plan(c, 3);
    FAIL() << "3 ranks over 4 heads was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 ranks cannot split the model's 4 attention heads"), std::string::npos)
        << e.what();
  }
}

// ---- in-process communicator ----

// Runs fn(rank, comm) on one thread per rank; returns each rank's error message ("" if none).
std::vector<std::string> on_threads(std::vector<std::unique_ptr<Communicator>>& comms,
                                    const std::function<void(int, Communicator&)>& fn) {
  std::vector<std::string> errors(comms.size());
  std::vector<std::thread> threads;
  for (size_t r = 0; r < comms.size(); ++r)
    threads.emplace_back([&, r] {
      try {
        fn(int(r), *comms[r]);
      } catch (const std::exception& e) {
        errors[r] = e.what();
        comms[r]->abort(e.what());
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

TEST(InProcessCommunicator, Collectives) {
  auto comms = make_in_process_group(3);
  std::vector<std::vector<float>> reduced(3), gathered(3), broadcast(3);
  on_threads(comms, [&](int r, Communicator& c) {
    EXPECT_EQ(c.rank(), r);
    EXPECT_EQ(c.world(), 3);
    for (int round = 0; round < 50; ++round) {  // buffers reused at once: the second rendezvous must hold
      reduced[r] = {float(r), float(r * 10 + round)};
      c.all_reduce_sum(reduced[r].data(), 2);
      ASSERT_EQ(reduced[r], (std::vector<float>{3, float(30 + 3 * round)}));
    }
    const float mine[2] = {float(r), float(-r)};
    gathered[r].resize(6);
    c.all_gather(mine, 2, gathered[r].data());
    broadcast[r] = {float(r), float(r)};
    c.broadcast(broadcast[r].data(), 2, 1);
    c.barrier();
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(gathered[r], (std::vector<float>{0, 0, 1, -1, 2, -2}));
    EXPECT_EQ(broadcast[r], (std::vector<float>{1, 1}));
  }
}

TEST(InProcessCommunicator, AFailingRankStopsTheOthers) {
  auto comms = make_in_process_group(3, {std::chrono::milliseconds(60000)});
  const auto start = std::chrono::steady_clock::now();
  auto errors = on_threads(comms, [&](int r, Communicator& c) {
    float x = 1;
    c.all_reduce_sum(&x, 1);
    if (r == 2) throw Error("disk on fire");
    c.all_reduce_sum(&x, 1);  // ranks 0 and 1 wait here for rank 2
  });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  EXPECT_EQ(errors[2], "disk on fire");
  for (int r : {0, 1}) EXPECT_NE(errors[r].find("rank 2 failed: disk on fire"), std::string::npos) << errors[r];
}

TEST(InProcessCommunicator, AHungRankTimesOut) {
  auto comms = make_in_process_group(2, {std::chrono::milliseconds(300)});
  auto errors = on_threads(comms, [&](int r, Communicator& c) {
    if (r == 1) return std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // never joins
    float x = 1;
    c.all_reduce_sum(&x, 1);
  });
  EXPECT_NE(errors[0].find("only 1 of 2 ranks arrived"), std::string::npos) << errors[0];
}

// ---- the sharded engine ----

class Sharded : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Sharded, LogitsMatchUnshardedAndReference) {
  const GoldenCase& c = GetParam();
  EXPECT_GT(check_against_golden(kData + "/" + c.model, c.chunk, c.ranks), 0);
}

std::vector<GoldenCase> sharded_cases() {
  std::vector<GoldenCase> cases;
  for (const char* model : {"golden/tiny-v3", "golden/tiny-v3-fp8"})
    for (int ranks : {2, 4})
      for (int chunk : {0, 1, 5}) cases.push_back({model, chunk, ranks});
  // 3 heads over 3 ranks: 8 experts as 3 + 3 + 2, FP8 column splits inside 128-blocks.
  for (int chunk : {0, 1}) cases.push_back({"family/tiny-v3-odd", chunk, 3});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, Sharded, ::testing::ValuesIn(sharded_cases()), golden_case_name);

TEST(ShardedEngine, AFailingRankEndsTheForwardWithItsMessage) {
  auto model = Model::load(kData + "/golden/tiny-v3");
  DistributedOptions options{4, 2};
  options.fail_rank = 1;
  options.fail_layer = 1;
  DistributedBackend backend(model->config, model->weights, options);
  const auto start = std::chrono::steady_clock::now();
  try {
    teacher_forced_logits(backend, model->config, {1, 2, 3, 4}, 0);
    FAIL() << "the forward pass went through a failing rank";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("rank 1: test hook: rank 1 fails at the attention of layer 1"), std::string::npos) << message;
    EXPECT_NE(message.find("ranks stopped with it: 0, 2, 3"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  for (int r : {0, 2, 3})  // every other rank left its collective with the cause
    EXPECT_NE(backend.rank_errors()[r].find("rank 1 failed"), std::string::npos) << backend.rank_errors()[r];
  EXPECT_THROW(teacher_forced_logits(backend, model->config, {1}, 0), Error);  // stays stopped
}

// ---- the command line ----

TEST(RanksFlag, ScoresLikeOneRank) {
  const std::string base = std::string(R1_BINARY) + " score --model " + kData + "/golden/tiny-v3 --tokens 5,17,300,2,44";
  const CommandResult one = run_command(base + " 2>/dev/null");
  const CommandResult two = run_command(base + " --ranks 2 2>/dev/null");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(two.exit_code, 0) << two.output;
  // The same NLL up to float32 summation order (partial sums added across ranks).
  auto nll = [](const std::string& out) { return std::stod(out.substr(out.find("mean NLL:") + 9)); };
  EXPECT_NEAR(nll(one.output), nll(two.output), 1e-5);
}

// Fast numerics on the CPU pack whole weights in panels when the checkpoint is read into memory
// (as the command line reads it): ranks holding a shard of a tensor must leave it in rows (once,
// a rank packed its half of q_b and the other rank's view failed). Two ranks sum in other orders
// (panels on whole experts, rows on shards): the NLL moves by ~3e-4 here, against 7e-3 between
// fast and exact numerics.
TEST(RanksFlag, FastNumericsScoreLikeOneRank) {
  const std::string base = std::string(R1_BINARY) + " score --model " + kData +
                           "/golden/tiny-v3-fp8 --tokens 5,17,300,2,44,1000,7,7,12 --numerics fast";
  const CommandResult one = run_command(base + " 2>&1");
  if (one.output.find("lacks AVX512-BF16") != std::string::npos) GTEST_SKIP() << "this CPU lacks AVX512-BF16 or VBMI";
  const CommandResult two = run_command(base + " --ranks 2 2>&1");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(two.exit_code, 0) << two.output;
  auto nll = [](const std::string& out) { return std::stod(out.substr(out.find("mean NLL:") + 9)); };
  EXPECT_NEAR(nll(one.output), nll(two.output), 2e-3);
}

TEST(RanksFlag, RefusesUndividedHeadsBeforeLoading) {
  // An empty directory beside a config.json: the refusal must come from config.json alone.
  TempDir dir;
  std::filesystem::copy_file(kData + "/golden/tiny-v3/config.json", dir.path / "config.json");
  const CommandResult r = run_command(std::string(R1_BINARY) + " score --model " + dir.path.string() + " --tokens 1,2 --ranks 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output,
            "r1: error: --ranks 3: 3 ranks cannot split the model's 4 attention heads evenly (num_attention_heads must "
            "be a multiple of the rank count; try one of: 1, 2, 4)\n");
}

TEST(RanksFlag, RefusesGpus) {
  const CommandResult r = run_command(std::string(R1_BINARY) + " run --model " + kData +
                                      "/golden/tiny-v3 --tokenizer " + kData + "/tokenizer/deepseek-r1 -p hi --ranks 2 --device cuda");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--ranks 2: in-process ranks shard the CPU engine only"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace r1
