// The thread pool's contract (quint/parallel.h): fn gets disjoint ranges covering [0, n), each
// at least `grain` items except the last, and parallel_for returns only when all are done; the
// pool survives its workers falling asleep between jobs, and callers from several threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "thread_pool.h"

namespace quint::test {
namespace {

void check_cover(runtime::ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(std::max<int64_t>(n, 1)));
  std::mutex m;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    {
      std::lock_guard<std::mutex> lock(m);
      ranges.emplace_back(b, e);
    }
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n << ", grain " << grain;
  std::sort(ranges.begin(), ranges.end());
  for (size_t r = 0; r < ranges.size(); ++r) {
    EXPECT_LT(ranges[r].first, ranges[r].second);
    if (r + 1 < ranges.size()) {
      EXPECT_GE(ranges[r].second - ranges[r].first, std::max<int64_t>(grain, 1));
    }
    if (r + 1 < ranges.size()) {
      EXPECT_EQ(ranges[r].second, ranges[r + 1].first);
    }
  }
}

TEST(ThreadPool, RangesAreDisjointAndCoverEverything) {
  for (int threads : {1, 2, 3, 4})
    for (int64_t n : {0, 1, 2, 3, 7, 8, 9, 64, 1000})
      for (int64_t grain : {1, 2, 5, 16}) {
        runtime::ThreadPool pool(threads);
        EXPECT_EQ(pool.num_threads(), threads);
        check_cover(pool, n, grain);
        if (HasFatalFailure()) return;
      }
}

TEST(ThreadPool, SurvivesSleepingWorkersAndManyJobs) {
  runtime::ThreadPool pool(2);
  for (int job = 0; job < 2000; ++job) {
    check_cover(pool, 1 + job % 37, 1 + job % 3);
    if (HasFatalFailure()) return;
    // Now and then an idle gap longer than the workers' spin (they go to sleep).
    if (job % 500 == 499) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST(ThreadPool, ConcurrentCallersEachGetTheirWholeRange) {
  runtime::ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&, c] {
      for (int job = 0; job < 300; ++job) {
        const int64_t n = 10 + (job + c) % 50;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (auto& h : hits)
          if (h.load() != 1) failures.fetch_add(1);
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace quint::test
