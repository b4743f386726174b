#!/usr/bin/env python3
"""Reference ImageNet preprocessing with torchvision on PIL, for comparison with quint's
tools/image.cc (quint::tools::load_image).

    preprocess_reference.py [--resize 256] [--crop 224] [--mean M M M] [--std S S S]
                            IMAGE OUT.npy [IMAGE OUT.npy ...]

For each IMAGE, writes OUT.npy: float32 [1, 3, H, W] =
    Normalize(mean, std)(ToTensor()(CenterCrop(crop)(Resize(resize)(Image.open(IMAGE).convert('RGB')))))
--resize 0 / --crop 0 leave those steps out. Several pairs may be given so that one interpreter
start (importing torch is slow) serves many images. Exit status 2 when torchvision is missing.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--mean", type=float, nargs=3, default=[0.485, 0.456, 0.406])
    ap.add_argument("--std", type=float, nargs=3, default=[0.229, 0.224, 0.225])
    ap.add_argument("--rgb", action="store_true",
                    help="write the uint8 HWC RGB image after resize and crop instead (for debugging)")
    ap.add_argument("pairs", nargs="+", metavar="IMAGE OUT.npy")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("expected IMAGE OUT.npy pairs")

    try:
        import numpy as np
        from PIL import Image
        from torchvision import transforms as T
    except ImportError as e:
        print(f"preprocess_reference.py: {e}", file=sys.stderr)
        return 2

    steps = []
    if args.resize > 0:
        steps.append(T.Resize(args.resize))  # bilinear; PIL always antialiases
    if args.crop > 0:
        steps.append(T.CenterCrop(args.crop))
    geometry = T.Compose(steps)
    to_tensor = T.Compose([T.ToTensor(), T.Normalize(args.mean, args.std)])

    for image_path, out_path in zip(args.pairs[0::2], args.pairs[1::2]):
        with Image.open(image_path) as im:
            rgb = geometry(im.convert("RGB"))
        if args.rgb:
            arr = np.asarray(rgb, dtype=np.uint8)
        else:
            arr = to_tensor(rgb).unsqueeze(0).numpy().astype(np.float32, copy=False)
        tmp = out_path + ".tmp.npy"
        np.save(tmp, np.ascontiguousarray(arr))
        os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
