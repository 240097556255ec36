"""Loading one feed of one delivery into the warehouse, or rejecting it.

For each feed: archive the file (copy, then hash; started ahead on a background
thread while the previous feed is staged), check it against
the manifest, stage it (``stage.py``), apply the feed rules, then either accept
it (one transaction: replace that report date's rows, store quarantined and
held rows, audit) or reject it (audit only; the previous data stays).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import archive, settings, sql
from .feeds import file_format
from .manifest import FileEntry, Manifest, display_path
from .quality import Validation, build_docs, validate_staged
from .stage import FeedRejected, StageResult, drop_staged, stage_file
from .states import State
from .warehouse import Warehouse, execute_file, raw_duckdb, utcnow

log = logging.getLogger(__name__)


@dataclass
class FeedOutcome:
    state: str
    report_date: str
    feed: str
    status: str                    # loaded | loaded_with_quarantine | rejected | unchanged
    reason: str | None = None
    detail: str | None = None
    file_name: str | None = None
    rows_received: int | None = None
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    load_id: int | None = None
    file_sha256: str | None = None   # the bytes received (archived under this hash)
    docs_path: str | None = None    # the Great Expectations Data Docs page of this load

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        if self.status == "rejected":
            return f"{self.state} {self.report_date} {self.feed}: REJECTED {self.reason}: {self.detail}"
        if self.status == "unchanged":
            return f"{self.state} {self.report_date} {self.feed}: unchanged since last processed, skipped"
        return (
            f"{self.state} {self.report_date} {self.feed}: {self.status}, {self.rows_received} rows received, "
            f"{self.rows_loaded} loaded, {self.rows_quarantined} quarantined, {self.rows_duplicate} duplicate"
        )


def registered_users_query(state_code: str, report_date: date) -> str:
    params = {"state_code": state_code, "report_date": report_date}
    return sql.inline(sql.read("load/registered_users.sql"), params).strip()


class Loader:
    """Loads feeds of one state through one warehouse connection."""

    def __init__(
        self, wh: Warehouse, conn: Connection, state: State, run_id: str | None = None, archive_root: Path | None = None
    ):
        self.wh, self.conn, self.state = wh, conn, state
        self.run_id = run_id or f"manual-{uuid.uuid4().hex[:12]}"
        self.archive_root = Path(archive_root) if archive_root else settings.archive_dir()
        self._scratch = None
        self._archiver: ThreadPoolExecutor | None = None
        self._archiving: dict[Path, Future] = {}

    # -- helpers ---------------------------------------------------------------------

    def _tx(self):
        """A transaction, or a savepoint inside the night's transaction (PostgreSQL
        ingests a state's whole night in one transaction; see night.ingest_deliveries)."""
        return self.conn.begin_nested() if self.conn.in_transaction() else self.conn.begin()

    def staging_db(self):
        """The DuckDB connection that stages files: the warehouse itself when it is DuckDB."""
        if self.wh.is_duckdb:
            return raw_duckdb(self.conn)
        if self._scratch is None:
            from .transfer import scratch_duckdb

            self._scratch = scratch_duckdb()
        return self._scratch

    def close(self) -> None:
        self.finish_archiving()
        build_docs()
        if self._scratch is not None:
            self._scratch.close()
            self._scratch = None

    @contextmanager
    def _registered_users(self, report_date: date):
        """The registered-users query for staging a completion feed (see
        stage_file). On DuckDB it runs where the file is staged. From a
        PostgreSQL warehouse the users are fetched on a worker thread while the
        file is staged (the connection is not used meanwhile), and staging waits
        for them only when it needs them; leaving the block waits for the
        worker in any case."""
        query = registered_users_query(self.state.code, report_date)
        if self.wh.is_duckdb:
            yield query
            return
        from .transfer import load_user_ids, pull_to_file, scratch_file

        tmp = scratch_file(".csv")
        with self._tx(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="mou-registered") as pool:
            pending = pool.submit(pull_to_file, self.conn, query, tmp)

            def registered_sql() -> str:
                pending.result()
                load_user_ids(self.staging_db(), tmp, "wh_registered_users")
                return "SELECT user_id FROM wh_registered_users"

            try:
                yield registered_sql
                pending.result()  # a failure of the worker, had staging not asked for it
            finally:
                wait([pending])
                tmp.unlink(missing_ok=True)

    def _last_load(self, report_date: date, feed: str):
        with self._tx():
            return self.conn.execute(
                sa.text(
                    "SELECT fingerprint, file_size, file_mtime_ns, file_sha256 FROM ops.feed_load "
                    "WHERE state_code = :s AND report_date = :d AND feed = :f ORDER BY load_id DESC LIMIT 1"
                ),
                {"s": self.state.code, "d": report_date, "f": feed},
            ).first()

    def _previous_snapshot_rows(self, report_date: date, feed: str) -> int | None:
        with self._tx():
            return self.conn.execute(
                sa.text(
                    "SELECT rows_received FROM core.feed_version WHERE state_code = :s AND feed = :f "
                    "AND mode = 'snapshot' AND report_date < :d ORDER BY report_date DESC LIMIT 1"
                ),
                {"s": self.state.code, "d": report_date, "f": feed},
            ).scalar()

    # -- archiving ahead ---------------------------------------------------------------

    def archive_ahead(self, manifest: Manifest, report_date: date, feeds: list[str]) -> None:
        """Start copying and hashing the delivery's files into the archive on a
        background thread, in feed order, so that a file is archived while the
        feed before it is staged and validated (the copy is kernel I/O and the
        hash releases the GIL; DuckDB releases it too). ``process_feed`` waits
        for its file's result; files that look unchanged are left alone."""
        folder = manifest.path.parent
        for feed in feeds:
            entry = manifest.entries.get(feed)
            if entry is None or entry.problem or not entry.name:
                continue
            path = folder / entry.name
            if path in self._archiving or not path.is_file():
                continue
            st = path.stat()
            if self._unchanged(manifest, entry, st.st_size, st.st_mtime_ns, self._last_load(report_date, feed)):
                continue
            if self._archiver is None:
                self._archiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mou-archive")
            self._archiving[path] = self._archiver.submit(archive.archive_file, path, self.archive_root)

    def _archive(self, path: Path) -> archive.Archived:
        pending = self._archiving.pop(path, None)
        return pending.result() if pending is not None else archive.archive_file(path, self.archive_root)

    def finish_archiving(self) -> None:
        """Wait for archiving started ahead whose feed was never processed."""
        for pending in self._archiving.values():
            try:
                pending.result()
            except Exception:  # the feed that needed it would have reported it
                log.exception("archiving ahead failed")
        self._archiving.clear()
        if self._archiver is not None:
            self._archiver.shutdown(wait=True)
            self._archiver = None

    def _unchanged(self, manifest: Manifest, entry: FileEntry, size: int, mtime_ns: int, last) -> bool:
        """Same size and mtime as ``last`` (the last load of this feed and date,
        from ``_last_load``) and the same manifest entry: the file is taken as
        unchanged without reading it."""
        if last is None or last.file_size != size or last.file_mtime_ns != mtime_ns:
            return False
        return self._fingerprint(manifest, entry, last.file_sha256) == last.fingerprint

    # -- one feed --------------------------------------------------------------------

    def process_feed(self, manifest: Manifest, report_date: date, feed: str, entry: FileEntry | None) -> FeedOutcome:
        folder = manifest.path.parent
        started = utcnow()
        out = FeedOutcome(self.state.code, report_date.isoformat(), feed, "rejected")
        name = entry.name if entry else None
        path = folder / name if name and not entry.problem else None
        out.file_name = display_path(path if path else (folder / name if name else manifest.path))
        file_sha = size = mtime = archived = arch = None
        last = self._last_load(report_date, feed)
        if path is not None and path.is_file():
            st = path.stat()
            size, mtime = st.st_size, st.st_mtime_ns
            if self._unchanged(manifest, entry, size, mtime, last):
                self._archiving.pop(path, None)
                out.status = "unchanged"
                return out
            arch = self._archive(path)
            file_sha, archived = arch.sha256, str(arch.path)
            out.file_sha256 = file_sha
        fingerprint = self._fingerprint(manifest, entry, file_sha)
        if last is not None and last.fingerprint == fingerprint:
            out.status = "unchanged"
            return out
        record = dict(
            fingerprint=fingerprint, manifest_sha256=manifest.sha256, file_name=out.file_name,
            file_sha256=file_sha, archive_path=archived, file_size=size, file_mtime_ns=mtime,
            mode=manifest.mode, started_at=started,
        )
        self._validation = None
        try:
            staged = self._check_and_stage(manifest, report_date, feed, entry, path, arch)
        except FeedRejected as rej:
            out.reason, out.detail, out.rows_received = rej.code, rej.detail, rej.rows_received
            drop_staged(self.staging_db(), feed)
            self._record(out, report_date, record)
            log.info("%s", out.line())
            return out
        out.rows_received = staged.rows_received
        out.rows_loaded, out.rows_quarantined, out.rows_duplicate = (
            staged.rows_loaded, staged.rows_quarantined, staged.rows_duplicate,
        )
        out.status = "loaded_with_quarantine" if staged.rows_quarantined else "loaded"
        self._accept(out, report_date, feed, record, manifest.mode)
        drop_staged(self.staging_db(), feed)
        log.info("%s", out.line())
        return out

    def _fingerprint(self, manifest: Manifest, entry: FileEntry | None, file_sha: str | None) -> str:
        parts = [manifest.problem or "", manifest.mode or "", entry.fingerprint_source if entry else "", entry.problem or "" if entry else "", file_sha or "absent"]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def _check_and_stage(self, manifest, report_date, feed, entry, path, arch: archive.Archived | None) -> StageResult:
        file_sha = arch.sha256 if arch else None
        if manifest.problem:
            raise FeedRejected("manifest_mismatch", manifest.problem)
        if entry.problem:
            raise FeedRejected("manifest_mismatch", entry.problem)
        if path is None or not path.is_file():
            raise FeedRejected(
                "manifest_mismatch", f"{display_path(manifest.path)}: names {entry.name!r} for {feed}, but no such file"
            )
        if file_sha != entry.sha256:
            raise FeedRejected(
                "manifest_mismatch",
                f"{display_path(path)}: sha256 is {file_sha} but the manifest says {entry.sha256} (changed or cut-off upload?)",
            )
        fmt, gz = file_format(entry.name)
        db = self.staging_db()

        def validator(db_, table, with_unknown_user):
            return validate_staged(
                db_, table, feed, self.state.code, report_date, file_sha, entry.rows, with_unknown_user
            )

        # A plain CSV with no more line breaks than header + records has none
        # inside quoted fields: line numbers follow from record numbers.
        embedded = gz or fmt != "csv" or entry.rows is None or arch.line_breaks > entry.rows + 1
        # Staging reads the archived copy: the bytes whose sha256 was just checked.
        with self._registered_users(report_date) if feed == "completion" else nullcontext() as registered:
            staged = stage_file(
                db, feed, arch.path, fmt, gz, report_date, display_path(path), entry.rows,
                registered_users_sql=registered,
                validator=validator,
                embedded_newlines=embedded,
            )
        self._validation = staged.validation
        received = staged.rows_received
        # Held unknown_user rows are not bad rows: they wait for an enrolment that
        # may just arrive later (a late delivery). Counting them would make
        # acceptance depend on the order deliveries arrive in.
        bad = staged.rows_quarantined - staged.quarantined.get("unknown_user", 0)
        if received and bad / received > self.state.bad_row_threshold:
            top = ", ".join(f"{k} {v}" for k, v in sorted(staged.quarantined.items(), key=lambda kv: -kv[1]))
            first = db.execute(
                f"SELECT line_no, reason, detail FROM stgq_{feed} ORDER BY line_no LIMIT 1"
            ).fetchone()
            raise FeedRejected(
                "too_many_bad_rows",
                f"{display_path(path)}: {bad} of {received} rows "
                f"({bad / received:.1%}) break row rules, over the state's threshold of "
                f"{self.state.bad_row_threshold:.0%} ({top}); first at line {first[0]}: {first[1]}: {first[2]}",
                rows_received=received,
            )
        if manifest.mode == "snapshot":
            previous = self._previous_snapshot_rows(report_date, feed)
            if previous and received < previous / 2:
                raise FeedRejected(
                    "volume_drop",
                    f"{display_path(path)}: snapshot has {received} rows, fewer than half of the previous accepted snapshot's {previous}",
                    rows_received=received,
                )
        return staged

    def _new_load_id(self) -> int:
        return int(self.conn.execute(sa.text("SELECT nextval('ops.load_id_seq')")).scalar())

    def _record_params(self, out: FeedOutcome, report_date: date, record: dict) -> dict:
        return dict(
            record, load_id=out.load_id, state_code=self.state.code, report_date=report_date, feed=out.feed,
            status=out.status, reason=out.reason, detail=out.detail, rows_received=out.rows_received,
            rows_loaded=out.rows_loaded, rows_quarantined=out.rows_quarantined, rows_duplicate=out.rows_duplicate,
            run_id=self.run_id, finished_at=utcnow(),
        )

    def _record(self, out: FeedOutcome, report_date: date, record: dict) -> None:
        with self._tx():
            out.load_id = self._new_load_id()
            execute_file(self.conn, "load/record_feed_load.sql", self._record_params(out, report_date, record))
            self._store_validation(out, report_date, record)

    def _store_validation(self, out: FeedOutcome, report_date: date, record: dict) -> None:
        """Keep the GX result of this feed (when staging got that far)."""
        validation: Validation | None = getattr(self, "_validation", None)
        self._validation = None
        if validation is None:
            return
        out.docs_path = validation.docs_path
        if out.docs_path:
            log.info("%s %s %s: Great Expectations Data Docs: %s", out.state, out.report_date, out.feed, out.docs_path)
        now = utcnow()
        rows = [
            {
                "load_id": out.load_id, "state_code": self.state.code, "report_date": report_date, "feed": out.feed,
                "file_sha256": record.get("file_sha256"), "expectation_no": i, "expectation": e["expectation"],
                "rule_code": e["rule"], "success": e["success"],
                "observed": int(e["observed"]) if isinstance(e["observed"], (int, float)) else None,
                "description": e["description"], "result_json": validation.result_json if i == 0 else None,
                "docs_path": validation.docs_path if i == 0 else None, "validated_at": now,
            }
            for i, e in enumerate(validation.expectations)
        ]
        if rows:
            self.conn.execute(
                sa.text(
                    "INSERT INTO ops.validation (load_id, state_code, report_date, feed, file_sha256, expectation_no, "
                    "expectation, rule_code, success, observed, description, result_json, docs_path, validated_at) "
                    "VALUES (:load_id, :state_code, :report_date, :feed, :file_sha256, :expectation_no, :expectation, "
                    ":rule_code, :success, :observed, :description, :result_json, :docs_path, :validated_at)"
                ),
                rows,
            )

    def _accept(self, out: FeedOutcome, report_date: date, feed: str, record: dict, mode: str) -> None:
        with self._tx():
            if not self.wh.is_duckdb:
                from .transfer import push_staged

                push_staged(self.staging_db(), self.conn, feed)
            out.load_id = self._new_load_id()
            params = self._record_params(out, report_date, record)
            params.update(mode=mode)
            execute_file(self.conn, f"load/accept_{feed}.sql", params)
            if self.wh.is_duckdb:
                execute_file(self.conn, f"load/core_{feed}.sql", params)
            else:  # the same statement, its rows by COPY from the staging DuckDB
                from .transfer import copy_insert

                (statement,) = sql.load(f"load/core_{feed}.sql")
                copy_insert(self.staging_db(), self.conn, statement, params)
            execute_file(self.conn, "load/accept_common.sql", params, feed=feed)
            execute_file(self.conn, "load/record_feed_load.sql", params)
            self._store_validation(out, report_date, record)

    # -- held rows -------------------------------------------------------------------

    def release_held(self, report_date: date) -> int:
        """Load held unknown_user rows whose user is registered as of report_date."""
        with self._tx():
            release_id = self._new_load_id()
            before = self.conn.execute(
                sa.text("SELECT count(*) FROM quarantine.held_completion WHERE state_code = :s"), {"s": self.state.code}
            ).scalar()
            execute_file(
                self.conn, "load/release_held.sql",
                {"state_code": self.state.code, "release_id": release_id, "now": utcnow()},
                registered=registered_users_query(self.state.code, report_date),
            )
            after = self.conn.execute(
                sa.text("SELECT count(*) FROM quarantine.held_completion WHERE state_code = :s"), {"s": self.state.code}
            ).scalar()
        return int(before - after)
