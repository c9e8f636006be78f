"""The PII taxonomy: every type the router reports, the groups a config may name, and the placeholder labels.

The signal model's head knows eight of these types (config.PII_TYPES, the head's training labels); the rest come
from the rules in rules.py. A config names types or groups; `expand` turns either into types, so policies and each
model's `pii_allow` speak the same language.
"""
from __future__ import annotations

from collections.abc import Iterable

GROUPS: dict[str, tuple[str, ...]] = {
    "contact": ("EMAIL_ADDRESS", "PHONE_NUMBER", "STREET_ADDRESS", "GPS_COORDINATES"),
    "identity": ("PERSON", "AGE", "DATE_OF_BIRTH"),
    "financial": ("CREDIT_CARD", "IBAN_CODE", "BANK_ACCOUNT", "CRYPTO_WALLET"),
    "government_id": ("US_SSN", "PASSPORT", "DRIVER_LICENSE", "NATIONAL_ID"),
    "secret": ("SECRET", "PASSWORD"),
    "online_identifier": ("IP_ADDRESS", "MAC_ADDRESS", "URL", "USERNAME"),
}
ALL_TYPES: tuple[str, ...] = tuple(t for ts in GROUPS.values() for t in ts)
GROUP_OF: dict[str, str] = {t: g for g, ts in GROUPS.items() for t in ts}

# Placeholder labels: short, so a model copies them back faithfully ("[EMAIL_1_k3v9qz]").
LABEL: dict[str, str] = {
    "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "STREET_ADDRESS": "ADDRESS", "GPS_COORDINATES": "GPS",
    "PERSON": "PERSON", "AGE": "AGE", "DATE_OF_BIRTH": "DOB", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN",
    "BANK_ACCOUNT": "ACCOUNT", "CRYPTO_WALLET": "WALLET", "US_SSN": "SSN", "PASSPORT": "PASSPORT",
    "DRIVER_LICENSE": "LICENSE", "NATIONAL_ID": "NATIONAL_ID", "SECRET": "SECRET", "PASSWORD": "PASSWORD",
    "IP_ADDRESS": "IP", "MAC_ADDRESS": "MAC", "URL": "URL", "USERNAME": "USERNAME",
}
assert set(LABEL) == set(ALL_TYPES)


def expand(names: Iterable[str]) -> frozenset[str]:
    """Types named by a list of type names, group names and "*" (every type)."""
    out: set[str] = set()
    for n in names:
        if n == "*":
            out.update(ALL_TYPES)
        elif n in GROUPS:
            out.update(GROUPS[n])
        else:
            out.add(n)
    return frozenset(out)


def unknown(names: Iterable[str]) -> list[str]:
    return [n for n in names if n != "*" and n not in GROUPS and n not in GROUP_OF]
