#!/usr/bin/python3
"""Writes the 1000 ImageNet class names, one a line (line i = class i), for `quint run --labels`.

The names come from Debian's torchvision (ResNet50_Weights.IMAGENET1K_V1.meta["categories"]),
which carries them offline: nothing is downloaded.

Usage: imagenet_classes.py OUT_FILE
"""

import sys
from pathlib import Path

NAME = "imagenet_classes.txt"


def categories():
    import torchvision  # imported here: a caller that only wants NAME need not load torch

    names = list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    if len(names) != 1000:
        raise RuntimeError(f"torchvision lists {len(names)} ImageNet categories, expected 1000")
    return names


def write(path):
    Path(path).write_text("\n".join(categories()) + "\n")


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__.strip().splitlines()[-1])
    write(sys.argv[1])


if __name__ == "__main__":
    main()
