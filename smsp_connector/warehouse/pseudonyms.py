"""A number's pseudonym: what replaces it once no longer needed (:mod:`.retention`), and what
the ledger and the compliance report name it by. The HMAC-SHA256 the export writes for it,
under the export's key, so that whoever holds the number and the key can find its records."""

from __future__ import annotations

from smsp_connector.warehouse.exports import hmac_sha256_hex

PSEUDONYM_PREFIX = "hmac:"


def pseudonym(key: bytes, number: str) -> str:
    """``hmac:`` and the hex HMAC-SHA256 of ``number`` (E.164) under ``key``."""
    return PSEUDONYM_PREFIX + hmac_sha256_hex(key, number)


def key_id(key: bytes) -> str:
    """A short public name of ``key`` recorded with each purge: which key a pseudonym needs."""
    return hmac_sha256_hex(key, "smsp-connector key id")[:16]
