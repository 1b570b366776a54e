"""Masking of personal data (脱敏) for readers who do not need it."""

from __future__ import annotations

from cityloop.contracts import CallerContact


def mask_name(name: str) -> str:
    """Keep the family name (the first character), hide the rest: 张三丰 → 张**."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else name


def mask_phone(phone: str) -> str:
    """Keep the first three and last four digits: 13812345678 → 138****5678."""
    digits = [ch for ch in phone if ch.isdigit()]
    if len(digits) < 8:
        return "*" * len(digits)
    return "".join(digits[:3]) + "*" * (len(digits) - 7) + "".join(digits[-4:])


def mask_caller(caller: CallerContact | None) -> CallerContact | None:
    if caller is None:
        return None
    return CallerContact(
        name=mask_name(caller.name) if caller.name else None,
        phone=mask_phone(caller.phone) if caller.phone else None,
    )
