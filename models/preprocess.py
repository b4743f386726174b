"""ImageNet preprocessing shared by export_resnet50.py (calibration) and dump_pytorch.py.

One definition for both scripts so the calibration images and the dumped inputs can never
drift apart, and so the C++ side has a single, exact recipe to reproduce:

  1. decode with PIL, convert to RGB (grey and palette images are expanded, alpha dropped);
  2. resize so the short side is 256 with PIL's BILINEAR filter (PIL's resampling is a
     convolution whose support widens when downscaling, i.e. it antialiases), the long side
     being int(256 * long / short) -- torchvision's Resize(256) rule, truncation not rounding;
  3. center-crop 224x224 at top = round((h - 224) / 2), left = round((w - 224) / 2), Python's
     round (half to even), as torchvision's CenterCrop does;
  4. in float32, one rounding per step: x = ((p / 255) - mean[c]) / std[c], which is what
     ToTensor() + Normalize() compute, so the result equals torchvision's bit for bit.
"""
from pathlib import Path

import numpy as np
from PIL import Image

RESIZE_SHORT_SIDE = 256
CROP_SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_rgb(path):
    """Decodes an image file to an RGB PIL image."""
    with Image.open(Path(path)) as img:
        return img.convert("RGB")


def preprocess(img):
    """RGB PIL image -> float32 array [3, 224, 224], normalized as described above."""
    w, h = img.size
    if w <= h:
        size = (RESIZE_SHORT_SIDE, int(RESIZE_SHORT_SIDE * h / w))
    else:
        size = (int(RESIZE_SHORT_SIDE * w / h), RESIZE_SHORT_SIDE)
    img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    top = int(round((h - CROP_SIZE) / 2.0))
    left = int(round((w - CROP_SIZE) / 2.0))
    img = img.crop((left, top, left + CROP_SIZE, top + CROP_SIZE))
    pixels = np.asarray(img, dtype=np.uint8).astype(np.float32)  # HWC
    x = (pixels / np.float32(255) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess_file(path):
    """Image file -> float32 array [1, 3, 224, 224], ready to feed the model."""
    return preprocess(load_rgb(path))[None]
