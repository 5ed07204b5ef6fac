// The in-process communicator: ranks are threads, buffers are exchanged by pointer. Each
// collective is two rendezvous: all ranks post their buffer, each reads what it needs, and all
// wait until everyone has finished reading before a buffer may change again.
#include <algorithm>
#include <condition_variable>
#include <mutex>

#include "common/error.h"
#include "dist/communicator.h"

namespace r1 {

class InProcessGroup {
 public:
  InProcessGroup(int world, InProcessOptions options) : world_(world), options_(options), posted_(size_t(world)) {}

  int world() const { return world_; }
  const float*& posted(int rank) { return posted_[size_t(rank)]; }

  // Returns once all ranks have arrived at the same rendezvous. Throws when a rank aborted, or
  // when the others do not arrive within the timeout (then aborts the group for everyone).
  void rendezvous(int rank, const char* collective) {
    std::unique_lock lock(mutex_);
    if (aborted_) throw RankStopped(fmt::format("rank {}: stopped at {}: {}", rank, collective, reason_));
    const long generation = generation_;
    if (++arrived_ == world_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    const bool passed = changed_.wait_for(lock, options_.timeout, [&] { return generation_ != generation || aborted_; });
    if (generation_ != generation) return;  // everyone arrived (an abort after that is seen next time)
    if (!passed) {
      reason_ = fmt::format("rank {} waited {:.1f} s at {} but only {} of {} ranks arrived: a rank hung or died", rank,
                            options_.timeout.count() / 1000.0, collective, arrived_, world_);
      aborted_ = true;
      changed_.notify_all();
      throw Error(reason_);
    }
    throw RankStopped(fmt::format("rank {}: stopped at {}: {}", rank, collective, reason_));
  }

  void abort(const std::string& reason) {
    std::lock_guard lock(mutex_);
    if (aborted_) return;  // keep the first cause
    aborted_ = true;
    reason_ = reason;
    changed_.notify_all();
  }

 private:
  const int world_;
  const InProcessOptions options_;
  std::vector<const float*> posted_;  // each rank's buffer in the collective in progress
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  long generation_ = 0;
  bool aborted_ = false;
  std::string reason_;
};

namespace {

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(std::shared_ptr<InProcessGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}

  int rank() const override { return rank_; }
  int world() const override { return group_->world(); }

  void all_reduce_sum(float* data, size_t count) override {
    group_->posted(rank_) = data;
    group_->rendezvous(rank_, "all_reduce_sum");
    sum_.resize(count);
    // Rank order, the same on every rank: all ranks get bitwise the same sums.
    for (size_t i = 0; i < count; ++i) {
      float s = group_->posted(0)[i];
      for (int r = 1; r < world(); ++r) s += group_->posted(r)[i];
      sum_[i] = s;
    }
    group_->rendezvous(rank_, "all_reduce_sum");
    std::copy(sum_.begin(), sum_.end(), data);
  }

  void all_gather(const float* send, size_t count, float* recv) override {
    group_->posted(rank_) = send;
    group_->rendezvous(rank_, "all_gather");
    for (int r = 0; r < world(); ++r) std::copy_n(group_->posted(r), count, recv + size_t(r) * count);
    group_->rendezvous(rank_, "all_gather");
  }

  void broadcast(float* data, size_t count, int root) override {
    group_->posted(rank_) = data;
    group_->rendezvous(rank_, "broadcast");
    if (rank_ != root) std::copy_n(group_->posted(root), count, data);
    group_->rendezvous(rank_, "broadcast");
  }

  void barrier() override { group_->rendezvous(rank_, "barrier"); }

  void abort(const std::string& reason) override { group_->abort(fmt::format("rank {} failed: {}", rank_, reason)); }

 private:
  std::shared_ptr<InProcessGroup> group_;
  const int rank_;
  std::vector<float> sum_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_in_process_group(int world, InProcessOptions options) {
  if (world < 1) fail("in-process group of {} ranks", world);
  auto group = std::make_shared<InProcessGroup>(world, options);
  std::vector<std::unique_ptr<Communicator>> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(std::make_unique<InProcessCommunicator>(group, r));
  return ranks;
}

}  // namespace r1
