// A Backend that runs one model sharded over N in-process CPU ranks (`--ranks N`): it owns a
// CpuBackend and a thread per rank, hands every op to all ranks at once and returns when all
// are done. The ranks combine their partial results through the communicator inside their ops,
// so the forward loop sees one backend and is unchanged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu/cpu_backend.h"
#include "dist/communicator.h"
#include "dist/plan.h"

namespace r1 {

struct DistributedOptions {
  int ranks = 2;
  int threads = 0;  // CPU threads for all ranks together (0: one per core), split evenly
  Numerics numerics = Numerics::exact;
  std::chrono::milliseconds timeout{120000};  // at a collective, before declaring a rank hung
  // Test hook: rank fail_rank throws as it starts the attention of layer fail_layer.
  int fail_rank = -1, fail_layer = -1;
};

class DistributedBackend final : public Backend {
 public:
  // Refuses a layout the plan refuses (e.g. heads not divisible by ranks).
  DistributedBackend(const ModelConfig& config, const ModelWeights& weights, DistributedOptions options);
  ~DistributedBackend() override;

  const ShardPlan& plan() const { return plan_; }
  // After a failed op: each rank's own error message ("" for a rank that did not fail).
  const std::vector<std::string>& rank_errors() const { return errors_; }

  Activation activation(int slot, int tokens, int dim) override;
  void configure_kv_cache(int num_pages, int page_size) override;
  void set_sequence_pages(int slot, std::span<const int> pages) override;
  void prepare(const Batch& batch) override;
  void embed(Activation h) override;
  void rmsnorm(int layer, Norm which, Activation h, Activation delta, Activation out) override;
  void final_norm(Activation h, Activation out) override;
  void add(Activation h, Activation delta) override;
  void select_rows(Activation h, std::span<const int> rows, Activation out) override;
  void attention(int layer, Activation x, Activation out) override;
  void mlp(int layer, Activation x, Activation out) override;
  void moe(int layer, Activation x, Activation out) override;
  void lm_head(Activation x, float* host_logits) override;
  bool expands_prompt_chunks() const override { return ranks_.front()->expands_prompt_chunks(); }

 private:
  // Runs job(rank) on every rank's thread and waits for all; if any rank threw, throws one
  // error naming the first failure (the others stop at their next collective).
  void on_ranks(const std::function<void(int)>& job);
  void rank_loop(int rank);
  // The rank's own buffer standing for the activation `a` handed out by activation().
  Activation on(int rank, Activation a) const;

  const ModelConfig& cfg_;
  const DistributedOptions options_;
  const ShardPlan plan_;
  std::vector<std::unique_ptr<Communicator>> comms_;
  std::vector<std::unique_ptr<CpuBackend>> ranks_;
  std::vector<std::vector<float*>> slots_;  // [rank][activation slot] buffer
  std::vector<std::vector<float>> lm_head_scratch_;  // logits of ranks other than 0 (the same values)

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int)>* job_ = nullptr;
  long generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::string first_error_;  // the failure that stopped the group; sticky
  std::vector<std::string> errors_;
};

}  // namespace r1
