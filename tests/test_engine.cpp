// The generation engine on the CPU with the tiny golden model: page allocation and reuse,
// batched = one-at-a-time at temperature 0, stop rules, cancellation, streamed text.
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "cpu/cpu_backend.h"
#include "engine/engine.h"
#include "model/model.h"

namespace r1 {
namespace {

const std::string kModel = std::string(R1_TEST_DATA) + "/golden/tiny-v3-fp8";
const std::string kTokenizer = std::string(R1_TEST_DATA) + "/tokenizer/deepseek-r1";

EngineOptions options(int max_batch, int context, int prefill_chunk = 256, int page_size = kDefaultPageSize,
                      int kv_pages = 0, std::vector<int> eos_ids = {}) {
  EngineOptions o;
  o.max_batch = max_batch;
  o.context_length = context;
  o.prefill_chunk = prefill_chunk;
  o.page_size = page_size;
  o.kv_pages = kv_pages;
  o.eos_ids = std::move(eos_ids);
  return o;
}

TEST(PageAllocator, GrowsOnDemandAndReusesFreedPages) {
  PageAllocator pool(4, 16);
  std::vector<int> a, b;
  ASSERT_TRUE(pool.grow(a, 1));
  EXPECT_EQ(a, std::vector<int>({0}));
  ASSERT_TRUE(pool.grow(a, 16));  // still one page
  EXPECT_EQ(a.size(), 1u);
  ASSERT_TRUE(pool.grow(a, 17));
  EXPECT_EQ(a, std::vector<int>({0, 1}));
  ASSERT_TRUE(pool.grow(b, 32));
  EXPECT_EQ(b, std::vector<int>({2, 3}));
  EXPECT_EQ(pool.free_pages(), 0);
  EXPECT_FALSE(pool.grow(b, 33));  // exhausted: unchanged
  EXPECT_EQ(b.size(), 2u);
  pool.release(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(pool.free_pages(), 2);
  ASSERT_TRUE(pool.grow(b, 64));  // the freed pages come back
  EXPECT_EQ(b, std::vector<int>({2, 3, 0, 1}));
  pool.release(b);
  EXPECT_EQ(pool.free_pages(), 4);
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(kModel).release();
    backend_ = new CpuBackend(model_->config, model_->weights, 2);
  }
  static void TearDownTestSuite() {
    delete backend_;
    delete model_;
  }

  static std::vector<int> random_prompt(int length, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int> ids(static_cast<size_t>(length));
    for (int& id : ids) id = 2 + int(rng() % uint32_t(model_->config.vocab_size - 2));
    return ids;
  }

  // Runs every prompt through one engine; results in submission order.
  static std::vector<Generation> generate(const std::vector<std::vector<int>>& prompts, EngineOptions options,
                                          const std::vector<int>& max_tokens, const Tokenizer* tokenizer = nullptr) {
    Engine engine(*backend_, model_->config, tokenizer, options);
    std::vector<Generation> results(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      Request r;
      r.prompt = prompts[i];
      r.sampling.temperature = 0;
      r.max_tokens = max_tokens[i];
      r.on_finish = [&results, i](const Generation& g) { results[i] = g; };
      engine.submit(std::move(r));
    }
    engine.run();
    EXPECT_EQ(engine.pages().free_pages(), engine.pages().num_pages()) << "every page returned";
    return results;
  }

  static Model* model_;
  static CpuBackend* backend_;
};
Model* EngineTest::model_ = nullptr;
CpuBackend* EngineTest::backend_ = nullptr;

// Sequences of different lengths join and leave a batch of 3, prompts fed in chunks of 7
// shared between sequences, pages of 4 positions interleaved: the tokens are exactly those of
// generating each prompt alone.
TEST_F(EngineTest, BatchedEqualsOneAtATimeAtTemperatureZero) {
  std::vector<std::vector<int>> prompts;
  std::vector<int> max_tokens;
  const int lengths[] = {3, 17, 40, 1, 9};
  for (int i = 0; i < 5; ++i) {
    prompts.push_back(random_prompt(lengths[i], 100 + i));
    max_tokens.push_back(6 + 2 * i);
  }
  const EngineOptions alone = options(1, 256);
  const EngineOptions batched = options(3, 256, /*prefill_chunk=*/7, /*page_size=*/4);
  const std::vector<Generation> expected = generate(prompts, alone, max_tokens);
  const std::vector<Generation> got = generate(prompts, batched, max_tokens);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "prompt " << i;
    EXPECT_EQ(int(got[i].tokens.size()), max_tokens[i]);
    EXPECT_EQ(got[i].finish, FinishReason::length);
  }
  EXPECT_NE(expected[0].tokens, expected[1].tokens) << "different prompts should give different tokens";
}

// Too few pages for every sequence at once: requests wait for pages and still finish alike.
TEST_F(EngineTest, RequestsWaitForPagesAndGetTheSameTokens) {
  std::vector<std::vector<int>> prompts = {random_prompt(10, 1), random_prompt(12, 2), random_prompt(5, 3)};
  const std::vector<int> max_tokens = {6, 6, 6};
  const EngineOptions alone = options(1, 64);
  // Each request may need 18 positions = 5 pages of 4; 7 pages hold one at a time.
  const EngineOptions scarce = options(3, 64, /*prefill_chunk=*/5, /*page_size=*/4, /*kv_pages=*/7);
  const auto expected = generate(prompts, alone, max_tokens);
  const auto got = generate(prompts, scarce, max_tokens);
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(got[i].tokens, expected[i].tokens) << i;
}

TEST_F(EngineTest, StopsAtEosMaxTokensAndContext) {
  const std::vector<int> prompt = random_prompt(8, 7);
  const Generation free_run = generate({prompt}, options(1, 64), {10})[0];
  ASSERT_EQ(free_run.tokens.size(), 10u);
  EXPECT_EQ(free_run.finish, FinishReason::length);

  // The third greedy token as EOS: generation stops at its first occurrence, EOS counted.
  const int eos = free_run.tokens[2];
  const Generation stopped = generate({prompt}, options(1, 64, 256, kDefaultPageSize, 0, {eos}), {10})[0];
  EXPECT_EQ(stopped.finish, FinishReason::stop);
  ASSERT_FALSE(stopped.tokens.empty());
  EXPECT_EQ(stopped.tokens.back(), eos);
  EXPECT_LE(stopped.tokens.size(), 3u);

  // A context of prompt + 4 positions: 4 tokens, then "context".
  const Generation full = generate({prompt}, options(1, 12), {0})[0];
  EXPECT_EQ(full.finish, FinishReason::context);
  EXPECT_EQ(full.tokens.size(), 4u);
  EXPECT_EQ(std::vector<int>(free_run.tokens.begin(), free_run.tokens.begin() + 4), full.tokens);
}

TEST_F(EngineTest, RejectsPromptsThatCannotRun) {
  Engine engine(*backend_, model_->config, nullptr, options(1, 16));
  Request too_long;
  too_long.prompt = random_prompt(16, 1);
  try {
    engine.submit(too_long);
    FAIL() << "a prompt filling the context was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the context holds 16"), std::string::npos) << e.what();
  }
  Request outside;
  outside.prompt = {5, model_->config.vocab_size};
  EXPECT_THROW(engine.submit(outside), Error);
  EXPECT_THROW(engine.submit(Request{}), Error);  // empty prompt
  EXPECT_TRUE(engine.idle());
}

TEST_F(EngineTest, CancelEndsOneSequenceAndLeavesTheOthers) {
  Engine engine(*backend_, model_->config, nullptr, options(2, 64));
  std::vector<Generation> results(2);
  int ids[2];
  for (int i = 0; i < 2; ++i) {
    Request r;
    r.prompt = random_prompt(6, 40 + i);
    r.sampling.temperature = 0;
    r.max_tokens = 8;
    r.on_finish = [&results, i](const Generation& g) { results[i] = g; };
    ids[i] = engine.submit(std::move(r));
  }
  engine.step();  // prefill: both sample their first token
  engine.cancel(ids[0]);
  engine.run();
  EXPECT_EQ(results[0].finish, FinishReason::cancelled);
  EXPECT_EQ(results[0].tokens.size(), 1u);
  EXPECT_EQ(results[1].finish, FinishReason::length);
  EXPECT_EQ(results[1].tokens.size(), 8u);
  EXPECT_EQ(engine.pages().free_pages(), engine.pages().num_pages());
}

// The streamed pieces are the decoded tokens, split into reasoning until </think>.
TEST_F(EngineTest, StreamsDecodedTextIntoReasoning) {
  const Tokenizer tokenizer(kTokenizer);
  Engine engine(*backend_, model_->config, &tokenizer, options(1, 64));
  std::string streamed;
  Generation result;
  Request r;
  r.prompt = random_prompt(5, 9);
  r.sampling.temperature = 0;
  r.max_tokens = 12;
  r.started_in_thinking = true;
  r.on_text = [&](const Segment& s) {
    EXPECT_EQ(s.channel, Channel::reasoning);
    streamed += s.text;
  };
  r.on_finish = [&](const Generation& g) { result = g; };
  engine.submit(std::move(r));
  engine.run();
  ASSERT_EQ(result.tokens.size(), 12u);
  EXPECT_EQ(streamed, tokenizer.decode(result.tokens));
  EXPECT_EQ(result.reasoning, streamed);
  EXPECT_TRUE(result.content.empty());
  EXPECT_GT(result.ttft_s, 0);
}

}  // namespace
}  // namespace r1
