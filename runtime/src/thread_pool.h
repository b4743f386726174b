// A fixed pool of worker threads implementing quint::Parallel. The calling thread works too, so a
// pool of N threads starts N-1 workers. Between jobs a worker spins briefly (a run issues one job
// per node, microseconds apart) and then sleeps, so an idle pool costs no CPU time.
//
// A job's range is split statically into one contiguous part per thread, the caller taking the
// first: thread i always gets the same part of every layer's pixels, so what a layer writes is
// mostly read by the next one on the same core (a cache line moving between the two cores of
// this machine costs ~230 ns). The handshake is one cache line out (the job) and one back per
// worker (its acknowledgement); no counter is shared between the cores while they work.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "quint/parallel.h"

namespace quint::runtime {

class ThreadPool final : public Parallel {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool() override;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const override { return static_cast<int>(workers_.size()) + 1; }
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn) override;

 private:
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;  // one job at a time; a concurrent caller runs its job inline

  // The current job, published by storing a new generation (release); read by the workers after
  // they see it (acquire). Rewritten only once every worker has acknowledged the previous one.
  struct alignas(64) Job {
    std::atomic<uint64_t> generation{0};
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0, chunk = 0;
  } job_;
  // Worker i's acknowledgement: the last generation it finished (its part done, or none).
  struct alignas(64) Ack {
    std::atomic<uint64_t> generation{0};
  };
  std::unique_ptr<Ack[]> acks_;

  alignas(64) std::atomic<int> sleepers_{0};  // workers waiting on wake_ (or about to)
  std::atomic<bool> stop_{false};
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
};

}  // namespace quint::runtime
