"""Real test images shipped inside installed packages (nothing is downloaded).

``skimage.data`` bundles astronaut, coffee, chelsea, rocket, ...; scikit-learn bundles
``china`` and ``flower`` (:func:`sklearn.datasets.load_sample_images`).  Images are
resized to 224x224 (anti-aliased), scaled to [0, 1] and normalised with the ImageNet
mean/std, giving float32 arrays of shape (3, 224, 224).
"""
from __future__ import annotations

import functools

import numpy as np

SKIMAGE_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                 "hubble_deep_field")
SKLEARN_NAMES = ("china", "flower")
DEFAULT_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _raw(name: str) -> np.ndarray:
    if name in SKLEARN_NAMES:
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name in SKIMAGE_NAMES:
        import skimage.data

        return getattr(skimage.data, name)()
    raise ValueError(f"unknown image {name!r}; known: {SKIMAGE_NAMES + SKLEARN_NAMES}")


@functools.lru_cache(maxsize=32)
def load_image(name: str, size: int = 224) -> np.ndarray:
    """One image as a normalised float32 (3, size, size) array (read-only, cached)."""
    from skimage.transform import resize

    img = _raw(name)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3]
    x = resize(img, (size, size), anti_aliasing=True, preserve_range=False).astype(np.float32)
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    out = np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
    out.flags.writeable = False
    return out


def load_images(names=DEFAULT_NAMES, size: int = 224) -> list[tuple[str, np.ndarray]]:
    """``[(name, (3, size, size) float32 array), ...]``."""
    return [(n, load_image(n, size)) for n in names]
