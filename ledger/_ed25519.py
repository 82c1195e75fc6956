"""Ed25519 point encodings checked without curve arithmetic (RFC 8032 §5.1): the group order, the canonical
encoding rule and the eight small-order points. Pure; :mod:`ledger.keys` applies them to keys and signatures."""

from __future__ import annotations

from typing import Final

__all__ = ["GROUP_ORDER", "SMALL_ORDER", "is_canonical"]

_P: Final = 2**255 - 19  # field prime, RFC 8032 §5.1
#: L, the order of the prime-order subgroup (RFC 8032 §5.1): a signature's S must be below it.
GROUP_ORDER: Final = 2**252 + 27742317777372353535851937790883648493
_Y_MASK: Final = (1 << 255) - 1

#: The canonical encodings of the eight points of order 1, 2, 4 and 8 (CCTV ed25519 README). Their
#: non-canonical alternative encodings are caught earlier by :func:`is_canonical`.
SMALL_ORDER: Final = frozenset(
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def is_canonical(enc: bytes) -> bool:
    """RFC 8032 §5.1.3: decoding fails if y >= p (step 1) or if x = 0 with the sign bit set (step 4).

    x = 0 only for y = 1 and y = p - 1, so both rules are integer comparisons, not curve arithmetic.
    """
    value = int.from_bytes(enc, "little")
    y, sign = value & _Y_MASK, value >> 255
    return y < _P and not (sign and y in (1, _P - 1))
