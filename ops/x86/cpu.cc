#include "cpu.h"

#include <cpuid.h>

#include <cstdint>

#include "quint/error.h"

namespace quint::ops::x86 {

namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures probe() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool has_fma = c & (1u << 12);
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;              // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_avx) return f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & (1u << 5);
  f.fma = has_fma;
  if (os_avx512) {
    f.avx512f = b & (1u << 16);
    f.avx512dq = b & (1u << 17);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = c & (1u << 11);
    f.avx512vbmi = c & (1u << 1);
  }
  __cpuid_count(7, 1, a, b, c, d);
  f.avxvnni = a & (1u << 4);
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = probe();
  return f;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Ref: return true;
    case Isa::Avx2: return f.avx2 && f.fma;
    case Isa::AvxVnni: return f.avx2 && f.fma && f.avxvnni;
    case Isa::Avx512Vnni: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = [] {
    for (Isa i : {Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2})
      if (isa_supported(i)) return i;
    return Isa::Ref;
  }();
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Ref: return "ref";
    case Isa::Avx2: return "avx2";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx512Vnni: return "vnni";
  }
  return "ref";
}

Isa resolve_isa(const std::string& name) {
  Isa want;
  if (name.empty() || name == "auto") return best_isa();
  if (name == "ref") want = Isa::Ref;
  else if (name == "avx2") want = Isa::Avx2;
  else if (name == "avxvnni") want = Isa::AvxVnni;
  else if (name == "avx512" || name == "vnni") want = Isa::Avx512Vnni;
  else fail("unknown ISA '", name, "' (expected auto, ref, avx2, avxvnni, avx512 or vnni)");
  if (!isa_supported(want)) fail("this CPU does not support the ", isa_name(want), " kernels");
  return want;
}

}  // namespace quint::ops::x86
