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

// Polls for done() (then sleeps on `cv` under `mutex` until it holds) and returns the poll for
// the next wait: long after a wait that a long poll would have caught, short after a longer one.
template <typename Done>
int wait_for(Done&& done, int poll_microseconds, std::mutex& mutex, std::condition_variable& cv, int long_poll,
             int short_poll) {
  const auto start = std::chrono::steady_clock::now();
  if (!poll(done, poll_microseconds)) {
    std::unique_lock lock(mutex);
    cv.wait(lock, done);
  }
  return std::chrono::steady_clock::now() - start < std::chrono::microseconds(long_poll) ? long_poll : short_poll;
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
  caller_poll_ = wait_for(finished, caller_poll_, mutex_, done_, kLongPollMicroseconds, kShortPollMicroseconds);
  job_ = nullptr;
}

void ThreadPool::worker_loop(int index) {
  long seen = 0;
  int next_poll = kLongPollMicroseconds;
  for (;;) {
    auto started = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    next_poll = wait_for(started, next_poll, mutex_, start_, kLongPollMicroseconds, kShortPollMicroseconds);
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
