// AVX-512 VNNI microkernels with the AVX-512 VBMI epilogue (the body is in
// qgemm_avx512_kernel.h). qgemm_kernel(Isa::Avx512Vnni) returns these when the CPU has VBMI.
#define QUINT_QGEMM_VBMI 1
#include "qgemm_avx512_kernel.h"

namespace quint::ops::x86 {

const QGemmKernel kQGemmAvx512VnniVbmi{Isa::Avx512Vnni, 14, 32, 4, packed_bytes<2>, pack<2>, run<14, 2>};

}  // namespace quint::ops::x86
