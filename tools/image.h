// Image files -> model input tensors, with the standard ImageNet preprocessing (as torchvision
// does it with PIL): RGB, resize the short side to `resize` with bilinear filtering
// (antialiased when downscaling), center-crop `crop`×`crop`, scale to [0,1], normalize with
// mean/std, NCHW float32 [1, 3, crop, crop] (or the resized size when crop is 0).
#pragma once

#include <array>
#include <string>

#include "quint/tensor.h"

namespace quint::tools {

struct ImageOptions {
  int resize = 256;  // short side after resizing; 0 keeps the size
  int crop = 224;    // square center crop; 0 keeps the resized image
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  // Images whose header claims more pixels than this are refused before decoding; so are
  // options that would make the output (after resize and crop) larger than this. 2^26 (8192²,
  // a 64-megapixel photo) bounds decoding at ~400 MB; a 750 KB PNG of zeros claiming 16000² pixels
  // took 1.5 GB under the old 2^28. The CLI's --max-pixels sets it.
  int64_t max_pixels = int64_t{1} << 26;
};

// Decodes JPEG, PNG or BMP (stb_image) to 8-bit RGB (gray replicated, alpha dropped, as PIL's
// convert('RGB')), then Resize(resize) + CenterCrop(crop) + ToTensor + Normalize(mean, std) as
// torchvision computes them on a PIL image. Lossless inputs (PNG, BMP) give torchvision's tensor
// bit for bit; for JPEG, stb_image's decoder differs from libjpeg-turbo's by a few levels in a
// small fraction of pixels. Throws quint::Error naming the file and the reason (unreadable,
// empty, unrecognized or corrupt data, zero or too large size, invalid options).
Tensor load_image(const std::string& path, const ImageOptions& opts = {});

}  // namespace quint::tools
