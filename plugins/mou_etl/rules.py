"""Row and feed rules of feeds.md, declared once.

Each row rule is a SQL predicate over the normalised columns of a staged feed
(``v_<col>`` trimmed text or NULL, ``d_<col>`` parsed date, ``n_<col>``
normalised value), true when a row breaks it, and a SQL expression giving the
clear detail. Staging evaluates them in table order (a row gets the first code
it breaks); the Great Expectations suite is built from the same declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from .feeds import BY_NAME, COMPLETION, ENROLMENT

MAX_DURATION_SECONDS = 1000 * 3600


@dataclass(frozen=True)
class RowRule:
    code: str
    feed: str
    predicate: str
    detail: str


def _missing(feed) -> tuple[str, str]:
    pred = " OR ".join(f"v_{c} IS NULL" for c in feed.required)
    parts = ", ".join(f"CASE WHEN v_{c} IS NULL THEN '{feed.display(c)}' END" for c in feed.required)
    return f"({pred})", f"'required value missing: ' || concat_ws(', ', {parts})"


def _bad_date(feed) -> tuple[str, str]:
    pred = " OR ".join(f"(v_{c} IS NOT NULL AND d_{c} IS NULL)" for c in feed.dates)
    parts = ", ".join(
        f"CASE WHEN v_{c} IS NOT NULL AND d_{c} IS NULL THEN '{feed.display(c)} ' || v_{c} END" for c in feed.dates
    )
    return f"({pred})", f"'date does not parse: ' || concat_ws(', ', {parts})"


def _future(feed) -> tuple[str, str]:
    pred = " OR ".join(f"d_{c} > {{report_date}}" for c in feed.dates)
    parts = ", ".join(
        f"CASE WHEN d_{c} > {{report_date}} THEN '{feed.display(c)} ' || CAST(d_{c} AS VARCHAR) END" for c in feed.dates
    )
    return f"({pred})", f"'date after the report date: ' || concat_ws(', ', {parts})"


_BAD_VALUE_PARTS = [
    ("v_status IS NOT NULL AND n_status IS NULL", "'Status ' || v_status || ' is not Not Started/In Progress/Completed/0/1/2'"),
    (
        "v_content_progress_percentage IS NOT NULL AND (n_content_progress_percentage IS NULL"
        " OR NOT (n_content_progress_percentage BETWEEN 0 AND 100))",
        "'Content_Progress_Percentage ' || v_content_progress_percentage || ' is not within 0..100'",
    ),
    (
        "v_user_rating IS NOT NULL AND (n_user_rating IS NULL OR NOT (n_user_rating BETWEEN 0 AND 5))",
        "'User_Rating ' || v_user_rating || ' is not within 0..5'",
    ),
    (
        f"v_content_duration IS NOT NULL AND (n_content_duration IS NULL OR n_content_duration > {MAX_DURATION_SECONDS})",
        "'Content_Duration ' || v_content_duration || ' is not HH:MM:SS up to 1000 hours'",
    ),
    (
        "v_certificate_generated IS NOT NULL AND n_certificate_generated IS NULL",
        "'Certificate_Generated ' || v_certificate_generated || ' is not Yes/No'",
    ),
]


def _bad_value() -> tuple[str, str]:
    pred = " OR ".join(f"({p})" for p, _ in _BAD_VALUE_PARTS)
    parts = ", ".join(f"CASE WHEN {p} THEN {d} END" for p, d in _BAD_VALUE_PARTS)
    return f"({pred})", f"concat_ws('; ', {parts})"


def _row_rules() -> dict[str, list[RowRule]]:
    rules: dict[str, list[RowRule]] = {"enrolment": [], "completion": []}
    for feed in (ENROLMENT, COMPLETION):
        for code, (pred, detail) in (
            ("missing_required", _missing(feed)),
            ("bad_date", _bad_date(feed)),
            ("future_date", _future(feed)),
        ):
            rules[feed.name].append(RowRule(code, feed.name, pred, detail))
    pred, detail = _bad_value()
    rules["completion"] += [
        RowRule("bad_value", "completion", pred, detail),
        RowRule(
            "completed_without_date", "completion",
            "(n_status = 'Completed' AND d_completed_on IS NULL)",
            "'Status Completed but Completed_On is empty'",
        ),
        RowRule(
            "completed_before_enrolled", "completion",
            "(d_completed_on < d_enrolled_on)",
            "'Completed_On ' || CAST(d_completed_on AS VARCHAR) || ' is before Enrolled_On ' || CAST(d_enrolled_on AS VARCHAR)",
        ),
    ]
    return rules


# Rules evaluated row by row, per feed, in the order of feeds.md's table.
ROW_RULES = _row_rules()

# Rules that need the other rows of the delivery or the warehouse; codes in table order.
CONFLICTING_DUPLICATE = "conflicting_duplicate"
UNKNOWN_USER = "unknown_user"
ROW_CODES = (
    "missing_required", "bad_date", "future_date", "bad_value", "completed_without_date",
    "completed_before_enrolled", CONFLICTING_DUPLICATE, UNKNOWN_USER,
)

# Feed rules, in the order of feeds.md's table (the first that applies is recorded).
FEED_CODES = ("manifest_mismatch", "unreadable", "missing_columns", "too_many_bad_rows", "volume_drop")


def rules_for(feed: str) -> list[RowRule]:
    BY_NAME[feed]  # KeyError for an unknown feed
    return ROW_RULES[feed]
