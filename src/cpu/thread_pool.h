// A persistent pool of worker threads. parallel_for splits [0, n) into one contiguous range
// per thread; the calling thread works on the first range instead of waiting idle.
//
// Between jobs a worker polls for the next one for a while (kSpinMicroseconds) before it
// sleeps, and so does the caller for the workers' last ranges: a decode step runs dozens of
// products back to back, and waking a sleeping thread costs 30-100 µs here (a 2-vCPU VM). The
// threads of one product finish up to a few hundred µs apart on this VM, so a 50 µs poll let the
// early one fall asleep before most dispatches (R1 slice, batch-1 decode step: 75.9 -> 73.3 ms
// with a 2 ms poll, two runs back to back; an MLP's SiLU, 18432 values, 106 -> 15 µs). The poll
// yields the core between looks, so a pool sharing its cores with other work gives them back at
// once (a pool that only spins collapses when threads outnumber cores), and it ends: an idle
// chat sleeps.
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
  static constexpr int kSpinMicroseconds = 2000;
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, done_;
  const std::function<void(int, int, int)>* job_ = nullptr;
  int job_size_ = 0;
  std::atomic<long> generation_{0};  // bumped (release) once job_ and job_size_ are set
  std::atomic<int> pending_{0};      // workers still on the current job
  bool stop_ = false;
};

}  // namespace r1
