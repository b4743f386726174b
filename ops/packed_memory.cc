#include "packed_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

namespace quint::ops {

#ifndef QUINT_ASAN
namespace {

constexpr size_t kHuge = size_t{2} << 20;    // a huge page
constexpr size_t kRegion = size_t{32} << 20;  // the shared regions

// A mapping of `bytes` (a multiple of kHuge) starting on a huge-page boundary, advised for huge
// pages; nullptr when the system refuses the mapping.
std::shared_ptr<void> map_region(size_t bytes) {
  const size_t len = bytes + kHuge;  // room to align the start
  void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t start = (reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1);
  // Give back the unaligned head and tail.
  const size_t head = start - reinterpret_cast<uintptr_t>(raw), tail = len - head - bytes;
  if (head) munmap(raw, head);
  if (tail) munmap(reinterpret_cast<void*>(start + bytes), tail);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  return std::shared_ptr<void>(reinterpret_cast<void*>(start), [bytes](void* p) { munmap(p, bytes); });
}

// The region new buffers are carved from; only weakly held, so that it is unmapped as soon as
// the buffers in it are gone (no memory stays behind after the last Session).
struct Pool {
  std::mutex mutex;
  std::weak_ptr<void> region;
  size_t used = 0, size = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may outlive static destruction order
  return *p;
}

}  // namespace
#endif

std::shared_ptr<void> map_huge(size_t bytes) {
  if (bytes == 0) bytes = 1;
#ifdef QUINT_ASAN
  void* mem = std::calloc(1, bytes);
  if (!mem) return nullptr;
  return std::shared_ptr<void>(mem, [](void* q) { std::free(q); });
#else
  if (bytes > SIZE_MAX - kHuge) return nullptr;
  return map_region((bytes + kHuge - 1) / kHuge * kHuge);
#endif
}

void PackedMemory::allocate(size_t bytes) {
#ifdef QUINT_ASAN
  // Under AddressSanitizer every buffer is a heap block of its own, so that reading past a
  // packed buffer is reported (inside a shared region it would not be).
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (!mem) throw std::bad_alloc();
  region_ = std::shared_ptr<void>(mem, [](void* q) { std::free(q); });
  data_ = static_cast<int8_t*>(mem);
#else
  const size_t need = (bytes + 63) / 64 * 64 + 64;
  if (need > kRegion / 4) {
    // A large buffer gets a region of its own.
    region_ = map_region((need + kHuge - 1) / kHuge * kHuge);
    if (!region_) throw std::bad_alloc();
    data_ = static_cast<int8_t*>(region_.get());
    return;
  }
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  std::shared_ptr<void> region = p.region.lock();
  if (!region || p.size - p.used < need) {
    region = map_region(kRegion);
    if (!region) throw std::bad_alloc();
    p.region = region;
    p.used = 0;
    p.size = kRegion;
  }
  data_ = static_cast<int8_t*>(region.get()) + p.used;
  region_ = std::move(region);
  p.used += (bytes + 63) / 64 * 64;
#endif
}

}  // namespace quint::ops
