#include "qgemm.h"

#include <algorithm>
#include <cmath>

#include "dwconv.h"
#include "interleave.h"
#include "lookup.h"
#include "maxpool.h"
#include "qadd.h"
#include "quantize.h"

namespace quint::ops::x86 {

const QGemmKernel* qgemm_kernel(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return cpu_features().avx512vbmi ? &kQGemmAvx512VnniVbmi : &kQGemmAvx512Vnni;
    case Isa::AvxVnni: return &kQGemmAvxVnni;
    case Isa::Avx2: return &kQGemmAvx2;
    case Isa::Ref: return nullptr;
  }
  return nullptr;
}

bool clamp_free_applies(int32_t qmin, int32_t qmax, const std::vector<float>& mult) {
  const bool whole_type = (qmin == 0 && qmax == 255) || (qmin == -128 && qmax == 127);
  return whole_type && std::all_of(mult.begin(), mult.end(), [](float m) { return std::fabs(m) < 1.0f; });
}

const QGemmKernel* qgemm_kernel_narrow(Isa isa) { return isa == Isa::Avx512Vnni ? &kQGemmAvx512VnniNarrow : nullptr; }

DwKernel dwconv_kernel(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return dwconv_avx512;
    case Isa::AvxVnni:
    case Isa::Avx2: return dwconv_avx2;
    case Isa::Ref: return nullptr;
  }
  return nullptr;
}

DwPack dwconv_weight_packer(Isa isa) { return isa == Isa::Avx512Vnni ? dwconv_avx512_pack_weights : nullptr; }

QAddKernel qadd_kernel(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return qadd_avx512;
    case Isa::AvxVnni:
    case Isa::Avx2: return qadd_avx2;
    case Isa::Ref: return nullptr;
  }
  return nullptr;
}

QMulKernel qmul_kernel(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return qmul_avx512;
    case Isa::AvxVnni:
    case Isa::Avx2: return qmul_avx2;
    case Isa::Ref: return nullptr;
  }
  return nullptr;
}

QuantizeKernel quantize_kernel(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return quantize_avx512;
    case Isa::AvxVnni:
    case Isa::Avx2: return quantize_avx2;
    case Isa::Ref: return nullptr;
  }
  return nullptr;
}

Interleave3Kernel interleave3_kernel(Isa isa) {
  return isa == Isa::Avx512Vnni && cpu_features().avx512vbmi ? interleave3_avx512vbmi : nullptr;
}

LookupKernel lookup_kernel(Isa isa) {
  return isa == Isa::Avx512Vnni && cpu_features().avx512vbmi ? lookup_avx512vbmi : nullptr;
}

MaxPoolRowKernel max_pool_row_kernel(Isa isa) { return isa == Isa::Avx512Vnni ? max_pool_row_avx512 : nullptr; }

}  // namespace quint::ops::x86
