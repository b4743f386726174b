// CPU feature detection, done once: CPUID for what the processor has, XGETBV for what the OS
// saves on context switches (a feature the OS does not enable is not usable).
#pragma once

#include <string>

namespace quint::ops::x86 {

// Kernel variants, from the portable reference up.
enum class Isa { Ref, Avx2, AvxVnni, Avx512Vnni };

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avx512vbmi = false;  // used by the Avx512Vnni kernels when present, not required
  bool avxvnni = false;
};

const CpuFeatures& cpu_features();
// The best variant this machine supports.
Isa best_isa();
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);  // "ref", "avx2", "avxvnni", "vnni"
// Resolves a user's choice ("auto", "ref", "avx2", "avxvnni", "avx512"/"vnni"); fails with a
// clear message when the machine lacks it.
Isa resolve_isa(const std::string& name);

// Keeps a value in a register: the compiler must not fold the narrowing that produced it
// (vpmovusdb / vpmovsdb) into the store that follows. The memory forms of those down-converts
// are far slower on AMD Zen than converting in a register and storing the bytes.
template <class V>
inline V in_register(V v) {
  __asm__("" : "+v"(v));
  return v;
}

}  // namespace quint::ops::x86
