#!/usr/bin/python3
"""Writes the numpy-made reference files read by tests/unit/test_npy.c.

Run from this directory with a numpy (any 1.x/2.x): /usr/bin/python3 gen.py
Values are exact in every dtype used, so the C test can recompute them: v[i] = i*0.25 - 1.
"""
import numpy as np
from numpy.lib import format as fmt

def ramp(shape, dtype):
    n = int(np.prod(shape))
    return (np.arange(n, dtype=np.float64) * 0.25 - 1).reshape(shape).astype(dtype)

np.save("f4_2x3x4.npy", ramp((2, 3, 4), "<f4"))
np.save("f8_5.npy", ramp((5,), "<f8"))
np.save("u1_2x2x3.npy", np.arange(12, dtype=np.uint8).reshape(2, 2, 3) * 20)
np.save("f4_scalar.npy", np.float32(2.5))
np.save("f4_0x3.npy", np.zeros((0, 3), "<f4"))
np.save("f4_1x1x1x1x1x1x1x2.npy", ramp((1,) * 7 + (2,), "<f4"))
for v in [(2, 0), (3, 0)]:
    with open("f4_v%d_3x2.npy" % v[0], "wb") as f:
        fmt.write_array(f, ramp((3, 2), "<f4"), version=v)
# Rejected: Fortran order, big-endian, integer, half.
np.save("f4_fortran_2x3.npy", np.asfortranarray(ramp((2, 3), "<f4")))
np.save("f4_big_endian.npy", ramp((4,), ">f4"))
np.save("i8_3.npy", np.arange(3, dtype="<i8"))
np.save("f2_3.npy", ramp((3,), "<f2"))
