"""float32 arrays as the float64 values whose JSON text is each element's shortest
round-trip decimal (what numpy's ``str`` prints: 0.2, not 0.20000000298023224), for the
REST responses; vectorized, because numpy's float->str costs ~1 us per value and a
batched request's ``attention`` can hold hundreds."""

import numpy as np

# float32 -> the float64 nearest to its shortest round-trip decimal (numpy's ``str``),
# which ``json`` then writes as that decimal.  numpy's float->str is ~1 us per value, so
# big arrays (e.g. attention, padded to the batch's lengths) take a vectorized search:
# for d significant digits, the two d-digit decimals around each value (exact integer
# times/over an exact power of ten, one rounding) are tried; the fewest digits that
# round-trip win, the closer one when both do.  Values where that could differ from
# numpy (a decimal on a rounding boundary, a near tie, tiny/huge/non-finite) use str().
_VECTOR_MIN = 64
_EXPONENT = np.arange(-23, 24)
_MUL = 10.0 ** np.maximum(_EXPONENT, 0)  # powers of ten; the |k| <= 22 used are exact
_DIV = 10.0 ** np.maximum(-_EXPONENT, 0)
_LONG, _SHORT = np.arange(27, 32)[:, None], np.arange(23, 28)[:, None]  # 5..9, 1..5 digits + 22
_ZERO32, _INF32, _HALF, _TINY = np.float32(0), np.float32(np.inf), np.float64(0.5), np.float64(1e-6)


def _by_str(flat):
    return np.array([float(str(v)) for v in flat], dtype=np.float64)


def _candidates(v, v32, e, digits):
    """-> (row of the fewest digits that work, its value, whether it surely matches str)."""
    j = digits - e  # index in _EXPONENT of k = digits - 1 - e (decimals m * 10**-k)
    mul, div = _MUL[j], _DIV[j]
    t = v * mul / div  # one rounding: the other factor is 1
    lo = np.floor(t)
    c_lo = lo * div / mul  # the double nearest to the decimal lo * 10**-k
    c_hi = (lo + 1) * div / mul
    ok_lo, ok_hi = c_lo.astype(np.float32) == v32, c_hi.astype(np.float32) == v32
    mid_dn = (v + np.nextafter(v32, _ZERO32)) / 2  # exact: the float32 rounding boundaries
    mid_up = (v + np.nextafter(v32, _INF32)) / 2
    tie = (c_lo == mid_dn) | (c_hi == mid_up)
    valid = ok_lo | ok_hi | tie
    first = valid.argmax(axis=0)
    col = np.arange(v.size)
    f_lo, f_hi, frac = ok_lo[first, col], ok_hi[first, col], t[first, col] - lo[first, col]
    use_hi = f_hi & ~(f_lo & (frac < _HALF))
    sure = valid[first, col] & ~tie[first, col] & ~(f_lo & f_hi & (np.abs(frac - _HALF) < _TINY))
    return first, np.where(use_hi, c_hi[first, col], c_lo[first, col]), sure


def shortest_float32(array):
    """float32 ndarray -> float64 ndarray of the values numpy prints for each element."""
    flat = array.ravel()
    if flat.size < _VECTOR_MIN:
        return _by_str(flat).reshape(array.shape)
    with np.errstate(invalid="ignore"):  # signalling NaNs
        x = flat.astype(np.float64)
    ax = np.abs(x)
    fast = (ax >= 1e-13) & (ax < 1e21)  # 10**k stays exact for every k used
    sel = np.flatnonzero(fast)
    v, v32 = ax[sel], np.abs(flat[sel])
    e = np.floor(np.log10(v)).astype(np.intp)
    first, value, sure = _candidates(v, v32, e, _LONG)
    short = np.flatnonzero(first == 0)  # 5 digits work: maybe fewer do
    if short.size:
        _, value[short], sure[short] = _candidates(v[short], v32[short], e[short], _SHORT)
    out = x.copy()
    out[sel] = np.copysign(value, x[sel])
    fast[sel[~sure]] = False
    rest = np.flatnonzero(~fast & (ax != 0))  # zeros (and -0.0) are exact already
    if rest.size:
        out[rest] = _by_str(flat[rest])
    return out.reshape(array.shape)
