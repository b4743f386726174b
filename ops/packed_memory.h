// Memory for prepacked weights. A model's packed weights are tens of megabytes written once at
// load; taken 4 KiB page by 4 KiB page, the page faults dominate loading (each costs microseconds,
// more under virtualization). PackedMemory carves buffers out of shared 32 MiB regions advised
// for transparent huge pages (MADV_HUGEPAGE), so a ResNet50 faults in ~13 pages of 2 MiB instead
// of ~6,500 small ones. A region is unmapped when the last buffer in it is gone; untouched parts
// of a region are never made resident. Under AddressSanitizer each buffer is a heap block of its
// own instead, so that reads past it are reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#if defined(__SANITIZE_ADDRESS__)
#define QUINT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QUINT_ASAN 1
#endif
#endif

namespace quint::ops {

// Built with AddressSanitizer: buffers that would share memory get heap blocks of their own
// instead, so that reading past one is reported.
#ifdef QUINT_ASAN
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

class PackedMemory {
 public:
  PackedMemory() = default;
  // `bytes` of 64-byte-aligned, uninitialized memory (replacing any held before).
  void allocate(size_t bytes);
  int8_t* get() const { return data_; }

 private:
  std::shared_ptr<void> region_;  // keeps the region mapped
  int8_t* data_ = nullptr;
};

// At least `bytes` of zero-filled memory on its own, advised for huge pages like the regions
// above (a heap block under AddressSanitizer); nullptr when the system refuses it. The loader
// reads model files into it.
std::shared_ptr<void> map_huge(size_t bytes);

}  // namespace quint::ops
