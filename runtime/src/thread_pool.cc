#include "thread_pool.h"

#include <algorithm>
#include <chrono>

#include <immintrin.h>

namespace quint::runtime {

namespace {
// How long an idle worker keeps polling for the next job before it sleeps. Long enough to bridge
// the gap between two nodes of a run, short enough not to hold a core once the run is over.
constexpr auto kSpin = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  const int workers = std::max(1, num_threads) - 1;
  acks_.reset(new Ack[static_cast<size_t>(std::max(workers, 1))]);
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t g;
    for (unsigned spins = 0; (g = job_.generation.load(std::memory_order_acquire)) == seen && !stop_.load(); ++spins) {
      _mm_pause();
      if ((spins & 15) == 15 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        // Registered before the generation is re-checked under the lock: the dispatcher
        // publishes, then reads sleepers_, so either this sees the job or it is woken.
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return job_.generation.load() != seen || stop_.load(); });
        sleepers_.fetch_sub(1);
        spin_until = std::chrono::steady_clock::now() + kSpin;
      }
    }
    if (stop_.load()) return;
    seen = g;
    const int64_t begin = (index + 1) * job_.chunk;
    if (begin < job_.n) (*job_.fn)(begin, std::min(job_.n, begin + job_.chunk));
    acks_[static_cast<size_t>(index)].generation.store(g, std::memory_order_release);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = num_threads();
  std::unique_lock<std::mutex> lock(dispatch_mutex_, std::try_to_lock);
  if (threads == 1 || n <= grain || !lock.owns_lock()) {
    fn(0, n);
    return;
  }
  // One part per thread, each a whole number of grains (the last may be shorter).
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t chunk = (grains + threads - 1) / threads * grain;

  // Every worker acknowledged the previous job before the last call returned: the fields are free.
  job_.fn = &fn;
  job_.n = n;
  job_.chunk = chunk;
  const uint64_t g = job_.generation.load(std::memory_order_relaxed) + 1;
  job_.generation.store(g, std::memory_order_seq_cst);
  if (sleepers_.load() != 0) {
    { std::lock_guard<std::mutex> sl(sleep_mutex_); }
    wake_.notify_all();
  }
  fn(0, std::min(n, chunk));
  for (size_t w = 0; w < workers_.size(); ++w)
    while (acks_[w].generation.load(std::memory_order_acquire) != g) _mm_pause();
}

}  // namespace quint::runtime
