"""Image resampling kernels for data augmentation."""
import math

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def rotate_bilinear(src, angles, out):
    """Rotate each image src[m] (C×H×W) by angles[m] radians about its centre into out[m].

    Positive angles turn the image counter-clockwise as displayed (row 0 at the top).
    Bilinear interpolation; samples outside the image read as 0.
    """
    num, channels, height, width = src.shape
    cy = (height - 1) / 2.0
    cx = (width - 1) / 2.0
    for m in prange(num):
        cos_a = math.cos(angles[m])
        sin_a = math.sin(angles[m])
        for y in range(height):
            for x in range(width):
                dy = y - cy
                dx = x - cx
                sx = cx + cos_a * dx - sin_a * dy
                sy = cy + sin_a * dx + cos_a * dy
                x0 = int(np.floor(sx))
                y0 = int(np.floor(sy))
                fx = sx - x0
                fy = sy - y0
                for c in range(channels):
                    value = 0.0
                    for yy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
                        if 0 <= yy < height:
                            for xx, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
                                if 0 <= xx < width:
                                    value += wy * wx * src[m, c, yy, xx]
                    out[m, c, y, x] = value
