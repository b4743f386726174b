// The parallelism kernels see: a fixed set of workers that split a range. The runtime's thread
// pool implements it; constant folding at load uses the serial implementation.
// (For operator implementations; an application sets SessionOptions::threads instead.)
#pragma once

#include <cstdint>
#include <functional>

namespace quint {

class Parallel {
 public:
  virtual ~Parallel() = default;
  virtual int num_threads() const = 0;
  // Calls fn(begin, end) on disjoint chunks covering [0, n), each at least `grain` items (the
  // last may be shorter), and returns when all are done. fn must not throw.
  virtual void parallel_for(int64_t n, int64_t grain,
                            const std::function<void(int64_t, int64_t)>& fn) = 0;
};

class SerialParallel final : public Parallel {
 public:
  int num_threads() const override { return 1; }
  void parallel_for(int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& fn) override {
    if (n > 0) fn(0, n);
  }
};

}  // namespace quint
