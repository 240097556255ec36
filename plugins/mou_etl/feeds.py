"""The two feeds of feeds.md, declared once: columns, which are required, the
key, the personal-data columns, and the formats a file may come in.

Everything that reads, validates or loads a feed takes its column lists from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FEEDS = ("enrolment", "completion")

# Personal data: never stored in the warehouse, the quarantine or the logs.
PERSONAL = ("full_name", "email", "phone_number", "employee_id")

FORMATS = {
    ".csv": ("csv", False),
    ".csv.gz": ("csv", True),
    ".jsonl": ("jsonl", False),
    ".jsonl.gz": ("jsonl", True),
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def canonical(header: str) -> str:
    """Header names match case-insensitively; space, _ and - are the same."""
    return _SEPARATORS.sub("_", header.strip().lower()).strip("_")


def file_format(name: str) -> tuple[str, bool] | None:
    """(format, gzipped) from a file name, or None when not a feed format."""
    lower = name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if lower.endswith(ext):
            return FORMATS[ext]
    return None


@dataclass(frozen=True)
class Feed:
    name: str
    columns: tuple[str, ...]       # canonical names of the columns kept (no personal data)
    required: tuple[str, ...]      # must hold a value in every row
    key: tuple[str, ...]           # canonical names of the key
    dates: tuple[str, ...]         # columns holding dates

    def display(self, column: str) -> str:
        """The contract's spelling of a canonical column name, for messages."""
        return DISPLAY.get(column, column)


ENROLMENT = Feed(
    name="enrolment",
    columns=("user_id", "department", "user_registration_date", "organization", "designation", "group", "mdoid"),
    required=("user_id", "department", "user_registration_date"),
    key=("user_id",),
    dates=("user_registration_date",),
)

COMPLETION = Feed(
    name="completion",
    columns=(
        "user_id", "content_id", "batch_id", "content_name", "content_provider", "content_type",
        "content_duration", "enrolled_on", "status", "content_progress_percentage", "completed_on",
        "certificate_generated", "certificate_id", "user_rating",
    ),
    required=("user_id", "content_id", "content_name", "content_duration", "enrolled_on", "status"),
    key=("user_id", "content_id", "batch_id"),
    dates=("enrolled_on", "completed_on"),
)

BY_NAME = {f.name: f for f in (ENROLMENT, COMPLETION)}

DISPLAY = {
    "user_id": "User_ID", "department": "Department", "user_registration_date": "User_Registration_Date",
    "organization": "Organization", "designation": "Designation", "group": "Group", "mdoid": "mdoid",
    "content_id": "Content_ID", "batch_id": "Batch_Id", "content_name": "Content_Name",
    "content_provider": "Content_Provider", "content_type": "Content_Type",
    "content_duration": "Content_Duration", "enrolled_on": "Enrolled_On", "status": "Status",
    "content_progress_percentage": "Content_Progress_Percentage", "completed_on": "Completed_On",
    "certificate_generated": "Certificate_Generated", "certificate_id": "Certificate_ID",
    "user_rating": "User_Rating",
}
