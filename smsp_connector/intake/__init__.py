"""Read messy CSV exports (marketing, CRM) of phone numbers or message ids, all as text.

Encodings (UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252, Latin-1), delimiters
(``;`` ``,`` tab), English or French headers, quoted fields, blank lines and trailing
delimiters are handled; a file that cannot be used raises :class:`IntakeError`, whose message
names the file and the problem.
"""

from smsp_connector.intake.frames import (
    PHONE_COLUMN_ALIASES,
    Intake,
    phone_intake_frame,
    read_phone_csv,
    read_text_column_csv,
)
from smsp_connector.intake.phone_numbers import DEFAULT_REGION
from smsp_connector.intake.reader import IntakeError, file_sha256, normalize_header
from smsp_connector.intake.schemas import PhoneIntakeSchema, TextIntakeSchema

__all__ = [
    "DEFAULT_REGION",
    "PHONE_COLUMN_ALIASES",
    "Intake",
    "IntakeError",
    "PhoneIntakeSchema",
    "TextIntakeSchema",
    "file_sha256",
    "normalize_header",
    "phone_intake_frame",
    "read_phone_csv",
    "read_text_column_csv",
]
