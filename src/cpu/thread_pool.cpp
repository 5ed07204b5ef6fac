#include "cpu/thread_pool.h"

#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

namespace {
void run_range(const std::function<void(int, int, int)>& fn, int n, int parts, int index) {
  int begin = int(int64_t(n) * index / parts), end = int(int64_t(n) * (index + 1) / parts);
  if (begin < end) fn(begin, end, index);
}

void relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Polls done() for up to `microseconds`, yielding the core between looks (another runnable
// thread, of this program or another, gets it at once); whether it came true.
template <typename Done>
bool poll(Done&& done, int microseconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(microseconds);
  for (int k = 0;; ++k) {
    if (done()) return true;
    if (k < 64) {
      relax();
      continue;
    }
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > until) return done();
  }
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int n, const std::function<void(int, int, int)>& fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  {
    std::lock_guard lock(mutex_);  // a worker going to sleep checks generation_ under it
    job_ = &fn;
    job_size_ = n;
    pending_.store(int(workers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_.notify_all();
  run_range(fn, n, size(), 0);
  auto finished = [this] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!poll(finished, kSpinMicroseconds)) {
    std::unique_lock lock(mutex_);
    done_.wait(lock, finished);
  }
  job_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  long seen = 0;
  for (;;) {
    auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!poll(started, kSpinMicroseconds)) {
      std::unique_lock lock(mutex_);
      start_.wait(lock, started);
    }
    seen = generation_.load(std::memory_order_acquire);
    const std::function<void(int, int, int)>* job;
    int n;
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      job = job_;
      n = job_size_;
    }
    run_range(*job, n, size(), index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mutex_);  // the caller checks pending_ under it before it sleeps
      done_.notify_one();
    }
  }
}

}  // namespace r1
