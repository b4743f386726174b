// AVX-512 VNNI microkernels (the body is in qgemm_avx512_kernel.h).
#define QUINT_QGEMM_VBMI 0
#include "qgemm_avx512_kernel.h"

namespace quint::ops::x86 {

const QGemmKernel kQGemmAvx512Vnni{Isa::Avx512Vnni, 14, 32, 4, packed_bytes<2>, pack<2>, run<14, 2>};
const QGemmKernel kQGemmAvx512VnniNarrow{Isa::Avx512Vnni, 12, 16, 4, packed_bytes<1>, pack<1>, run<12, 1>};

}  // namespace quint::ops::x86
