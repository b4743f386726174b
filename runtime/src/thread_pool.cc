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
  int workers = std::max(1, num_threads) - 1;
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work_on_current_job() {
  for (;;) {
    int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= num_chunks_) break;
    int64_t begin = c * chunk_;
    int64_t end = std::min(n_, begin + chunk_);
    (*fn_)(begin, end);
    chunks_done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_loop() {
  // generation_ is odd while the dispatcher rewrites the job and even once it is published.
  uint64_t seen = 0;
  auto ready = [&](uint64_t g) { return g != seen && (g & 1) == 0; };
  for (;;) {
    auto spin_until = std::chrono::steady_clock::now() + kSpin;
    uint64_t g;
    while (!ready(g = generation_.load()) && !stop_.load()) {
      _mm_pause();
      if (std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        wake_.wait(lock, [&] { return ready(generation_.load()) || stop_.load(); });
      }
    }
    if (stop_.load()) return;
    seen = g;
    // Announce ourselves before re-checking the generation: the dispatcher makes it odd before
    // it waits for active_workers_ to drain, so either it sees us or we see its change.
    active_workers_.fetch_add(1);
    if (generation_.load() == g) work_on_current_job();
    active_workers_.fetch_sub(1);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int threads = num_threads();
  std::unique_lock<std::mutex> lock(dispatch_mutex_, std::try_to_lock);
  if (threads == 1 || n <= grain || !lock.owns_lock()) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balance uneven work without much scheduling overhead.
  int64_t max_chunks = static_cast<int64_t>(threads) * 4;
  int64_t chunks = std::min(max_chunks, (n + grain - 1) / grain);
  int64_t chunk = (n + chunks - 1) / chunks;
  chunks = (n + chunk - 1) / chunk;

  generation_.fetch_add(1);  // odd: the job is being replaced
  while (active_workers_.load() != 0) _mm_pause();
  fn_ = &fn;
  n_ = n;
  chunk_ = chunk;
  num_chunks_ = chunks;
  chunks_done_.store(0);
  next_chunk_.store(0);
  {
    std::lock_guard<std::mutex> sl(sleep_mutex_);
    generation_.fetch_add(1);  // even: published
  }
  wake_.notify_all();
  work_on_current_job();
  while (chunks_done_.load(std::memory_order_acquire) != chunks) _mm_pause();
}

}  // namespace quint::runtime
