"""Image resampling kernels for data augmentation."""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def affine_bilinear(src, maps, out):
    """Warp each image src[m] (C×H×W) into out[m] by the inverse map maps[m] (2×3).

    Output pixel (x, y), taken relative to the image centre (cx, cy) = ((W-1)/2, (H-1)/2),
    samples the source at
        sx = cx + maps[m,0,0]·(x-cx) + maps[m,0,1]·(y-cy) + maps[m,0,2]
        sy = cy + maps[m,1,0]·(x-cx) + maps[m,1,1]·(y-cy) + maps[m,1,2]
    with bilinear interpolation; samples outside the image read as 0.
    """
    num, channels, height, width = src.shape
    cy = (height - 1) / 2.0
    cx = (width - 1) / 2.0
    for m in prange(num):
        a, b, tx = maps[m, 0, 0], maps[m, 0, 1], maps[m, 0, 2]
        c, d, ty = maps[m, 1, 0], maps[m, 1, 1], maps[m, 1, 2]
        for y in range(height):
            for x in range(width):
                dx = x - cx
                dy = y - cy
                sx = cx + a * dx + b * dy + tx
                sy = cy + c * dx + d * dy + ty
                x0 = int(np.floor(sx))
                y0 = int(np.floor(sy))
                fx = sx - x0
                fy = sy - y0
                for ch in range(channels):
                    value = 0.0
                    for yy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
                        if 0 <= yy < height:
                            for xx, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
                                if 0 <= xx < width:
                                    value += wy * wx * src[m, ch, yy, xx]
                    out[m, ch, y, x] = value
