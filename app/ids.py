"""UUIDs as the service keeps them: 16-byte keys inside, canonical strings outside."""

import os
import time

_RANDOM_BITS = 74  # rand_a (12) + rand_b (62) of RFC 9562, section 5.7
_RANDOM_MASK = (1 << _RANDOM_BITS) - 1

_last_ms = 0
_last_random = 0


def parse(text: str) -> bytes | None:
    """The 16 bytes of a hyphenated UUID string (either case), or None if it is not one."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return None
    try:
        key = bytes.fromhex(text.replace("-", ""))
    except ValueError:  # a character that is not a hex digit, or an odd one out
        return None
    # fromhex skips white space between pairs, and replace() any hyphen elsewhere: either
    # leaves fewer than 32 digits, so 16 bytes means exactly 32 digits at their places.
    return key if len(key) == 16 else None


# The version nibble 7, and the RFC 9562 variant bits 10, as whole bytes.
_V7_VERSION_BYTES = bytes(range(0x70, 0x80))
_RFC_VARIANT_BYTES = bytes(range(0x80, 0xC0))


def parse_v7_column(texts: list[str]) -> list[bytes] | None:
    """The keys of `texts`, or None unless every one is a version 7 UUID with the RFC variant:
    what parse() and is_v7() say of each, in a few calls over the whole list. A batch's
    thousands of ids go through it; the caller looks at them one by one only to name a bad one.
    """
    count = len(texts)
    if count and set(map(len, texts)) != {36}:
        return None
    joined = "".join(texts)
    hyphens = "-" * count
    if (joined[8::36], joined[13::36], joined[18::36], joined[23::36]) != (hyphens,) * 4:
        return None
    try:
        raw = bytes.fromhex(joined.replace("-", ""))
    except ValueError:
        return None
    # As in parse(): white space or a hyphen out of place leaves fewer digits than 32 each.
    if len(raw) != 16 * count:
        return None
    if raw[6::16].translate(None, _V7_VERSION_BYTES) or raw[8::16].translate(
        None, _RFC_VARIANT_BYTES
    ):
        return None
    return [raw[at : at + 16] for at in range(0, 16 * count, 16)]


def to_str(key: bytes) -> str:
    """The lowercase canonical form of a 16-byte UUID."""
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def version(key: bytes) -> int:
    return key[6] >> 4


def is_v7(key: bytes) -> bool:
    """Version 7 with the RFC 9562 variant, the only ids Opik accepts from clients."""
    return key[6] >> 4 == 7 and key[8] >> 6 == 0b10


def uuid7() -> bytes:
    """A new UUID version 7, strictly increasing within this process.

    Within one millisecond the 74 random bits act as a counter (RFC 9562, section 6.2,
    method 2), so ids made in one batch sort in the order they were made.
    """
    global _last_ms, _last_random
    ms = time.time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _last_random = ms, int.from_bytes(os.urandom(10)) & (_RANDOM_MASK >> 1)
    else:
        _last_random += 1
        if _last_random > _RANDOM_MASK:  # 2**73 ids in one millisecond: borrow the next one
            _last_ms, _last_random = _last_ms + 1, 0
    rand_a, rand_b = _last_random >> 62, _last_random & ((1 << 62) - 1)
    value = (_last_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return value.to_bytes(16)
