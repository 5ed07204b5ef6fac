// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous range
// per thread; the calling thread works on the first range instead of waiting idle.
//
// Between jobs a worker polls for the next one for a while before it sleeps, and so does the
// caller for the workers' last ranges: a decode step runs dozens of products back to back, and
// waking a sleeping thread costs 30-100 µs here (a 2-vCPU VM). The threads of one product finish
// up to a few hundred µs apart on this VM, so a 50 µs poll let the early one fall asleep before
// most dispatches. A long poll costs where waits are long (a prompt's products, threads finishing
// ms apart: 512-token prefill 1.5-3% slower with a 2 ms poll every time), so each thread polls
// 2 ms after a wait that ended within 2 ms, 50 µs after a longer one (R1 slice, batch-1 decode,
// against 50 µs always, chosen per step in one process: an MLP's gate/up 5.00 -> 4.51 ms, its
// down 2.52 -> 2.17, its SiLU 0.13 -> 0.02, attention's per-head passes 0.73 -> 0.60, the router
// 0.26 -> 0.10: ~5% of the step). The poll yields the core between looks, so a pool sharing its
// cores with other work gives them back at once (a pool that only spins collapses when threads
// outnumber cores), and it ends: an idle chat sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace r1 {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: one per hardware thread
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // fn(begin, end, thread_index) over contiguous ranges covering [0, n).
  void parallel_for(int n, const std::function<void(int, int, int)>& fn);

 private:
  static constexpr int kLongPollMicroseconds = 2000, kShortPollMicroseconds = 50;
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int, int, int)>* job_ = nullptr;
  int job_size_ = 0;
  std::atomic<long> generation_{0};  // bumped (release) once job_ and job_size_ are set
  std::atomic<int> pending_{0};      // workers still on the current job
  bool stop_ = false;
  int caller_poll_ = kLongPollMicroseconds;  // the caller's next poll for the workers
};

}  // namespace r1
