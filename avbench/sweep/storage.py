"""Where a study lives, how workers see each other's trials, and how they take turns.

Three storages, chosen by `--storage`:
  (default)                      results/studies/<experiment>.db, an SQLite file (WAL mode)
  path.db | sqlite:///path.db    SQLite: one machine, a few processes
  path.log | journal:///path.log Optuna's JournalStorage on a file: one machine (or a shared
                                 file system with working fcntl locks), an append-only log
  postgresql://user@host/db      PostgreSQL: many processes on many machines

Every storage gets heartbeats, so any worker on any host can fail a trial whose process
stopped beating and re-enqueue it. Every storage also gets a *claim lock*, held while a
worker counts the study's trials and asks for a new one, so `--trials N` is never overshot
by workers asking at the same moment. On PostgreSQL both wait out a restart of the server
(avbench.sweep.reconnect).
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat  # the interface fail_stale_trials() checks for
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from avbench.errors import StorageError
from avbench.results.layout import study_storage

HEARTBEAT_INTERVAL_S = 10
CONNECT_TIMEOUT_S = 10  # a database server that does not answer: try again (avbench.sweep.reconnect)
GRACE_PERIOD_S = 30
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
HEARTBEAT_ATTR = "avbench:heartbeat"
# A killed or interrupted trial is retried (resumed from its checkpoint) this many times before
# it is given up. Kills are mostly the machine's (kill -9, preemption, a worker's OOM kill), so
# the bound is far above what an unlucky trial meets; only a trial that kills its own process
# every time (its memory use calling in the OOM killer) reaches it.
MAX_RETRIES = 20
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ExperimentalWarning)
    RETRY = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)

USAGE = (
    "use a .db file or sqlite:///path.db (SQLite), a .log file or journal:///path.log "
    "(Optuna journal file), or postgresql://user@host:port/database"
)


def default_storage(results: Path, experiment: str) -> str:
    return f"sqlite:///{study_storage(results, experiment).resolve()}"


def resolve_storage_url(raw: str | None, results: Path, experiment: str) -> str:
    """A canonical URL with an absolute path, so every worker (and optuna-dashboard) opens
    the same file whatever its working directory."""
    if raw is None:
        return default_storage(results, experiment)
    if raw.startswith("journal://"):
        return f"journal://{Path(raw[len('journal://') :]).expanduser().resolve()}"
    if raw.startswith("sqlite:///"):
        return f"sqlite:///{Path(raw[len('sqlite:///') :]).expanduser().resolve()}"
    scheme = raw.split("://", 1)[0] if "://" in raw else None
    if scheme == "postgresql":
        # SQLAlchemy 2.1 would pick psycopg 3 for a bare postgresql://; avbench installs psycopg2.
        return "postgresql+psycopg2://" + raw.split("://", 1)[1]
    if scheme in ("postgresql+psycopg2", "postgresql+psycopg"):
        return raw
    if scheme == "postgres":
        raise StorageError(f"storage '{raw}': write postgresql://, not postgres:// (SQLAlchemy's spelling)")
    if scheme is None:
        path = Path(raw).expanduser().resolve()
        if path.suffix in JOURNAL_SUFFIXES:
            return f"journal://{path}"
        if path.suffix in SQLITE_SUFFIXES:
            return f"sqlite:///{path}"
    raise StorageError(f"unsupported storage '{raw}': {USAGE}")


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    if url.startswith("postgresql"):
        return make_url(url).render_as_string(hide_password=True)
    return url


def storage_file(url: str) -> Path | None:
    for prefix in ("sqlite:///", "journal://"):
        if url.startswith(prefix):
            return Path(url[len(prefix) :])
    return None


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's JournalStorage has no heartbeats; this adds them as a trial system attribute
    (a wall-clock time, so hosts sharing the file need synchronised clocks)."""

    def __init__(
        self, backend: JournalFileBackend, heartbeat_interval: int, grace_period: int, stale_callback: Callable | None
    ):
        super().__init__(backend)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.stale_callback = stale_callback

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - t.system_attrs.get(HEARTBEAT_ATTR, now) > self.grace_period]

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable | None:
        return self.stale_callback


def open_storage(
    url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL_S, grace_period: int = GRACE_PERIOD_S
) -> BaseStorage:
    """Open (creating when needed) the storage behind a URL from resolve_storage_url."""
    path = storage_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("journal://"):
        _check_journal(path)
        return HeartbeatJournalStorage(JournalFileBackend(str(path)), heartbeat_interval, grace_period, RETRY)
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):
        _enable_wal(path)
        # Writers queue for the lock for up to a minute instead of failing with "database is locked".
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        # A connection the server dropped (a restart) is replaced before use, not failed on.
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats are "experimental" since 2.8
            if url.startswith("sqlite"):
                return _open_sqlite(url, path, engine_kwargs, heartbeats(heartbeat_interval, grace_period))
            return _open_server_storage(url, engine_kwargs, heartbeat_interval, grace_period)
    except StorageError:
        raise
    except Exception as exc:  # the driver's errors vary; the user needs the first line only
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open storage {display_url(url)}: {reason}") from None


def _open_sqlite(url: str, path: Path | None, engine_kwargs: dict, beats: dict) -> BaseStorage:
    """An SQLite storage; a file this Optuna wrote opens without set-up. Processes opening a
    new file at the same moment (sweeps started side by side) race in Optuna's set-up, one of
    them failing with "table alembic_version already exists": they take turns under the
    file's claim lock, and the ones that come later find the file made."""

    def opened(made_here: bool) -> BaseStorage:
        checks = {"skip_compatibility_check": made_here, "skip_table_creation": made_here}
        with _alembic_left_alone(made_here):
            return RDBStorage(url, engine_kwargs=engine_kwargs, **checks, **beats)

    if path is None:  # an in-memory database: no other process opens it
        return opened(False)
    if _written_by_this_optuna(path):
        return opened(True)
    with _FileLock(path):  # never held here by this process: it would hold a storage that is made
        return opened(_written_by_this_optuna(path))


def _open_server_storage(url: str, engine_kwargs: dict, heartbeat_interval: int, grace_period: int) -> BaseStorage:
    """A database server's storage, reconnecting after a restart. A --workers worker waits for
    the server to come back (its parent opened this storage already, so it exists); a command
    a user typed fails at once on a server it cannot reach, such as a mistyped host or port."""
    from avbench.sweep.launch import started_by_parent
    from avbench.sweep.reconnect import ReconnectingRDBStorage, retrying

    def connect() -> BaseStorage:
        return ReconnectingRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeats(heartbeat_interval, grace_period))

    return retrying(connect, display_url(url)) if started_by_parent() else connect()


def _check_journal(path: Path) -> None:
    """Refuse, in one line, a journal file whose complete lines are not Optuna's JSON records.
    Optuna itself only notices once a new record follows the bad line, deep inside a trial."""
    import json

    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                break  # a record being appended right now
            try:
                ok = isinstance(json.loads(line), dict)
            except ValueError:
                ok = False
            if not ok:
                raise StorageError(
                    f"journal storage {path} is damaged or not an Optuna journal file (line {number}); "
                    "move it away or pass another --storage"
                )


def _enable_wal(path: Path) -> None:
    """WAL lets readers (the progress display, optuna-dashboard) work while a worker writes.
    The mode is stored in the file, so setting it once is enough."""
    try:
        with sqlite3.connect(path, timeout=60) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open SQLite storage {path}: {exc}") from None


def heartbeats(interval: int, grace_period: int) -> dict:
    """An RDBStorage's heartbeat arguments: a trial silent for longer than the grace period is
    failed and re-enqueued."""
    return {"heartbeat_interval": interval, "grace_period": grace_period, "heartbeat_stale_trial_callback": RETRY}


def _written_by_this_optuna(path: Path | None) -> bool:
    """Whether the SQLite file's tables were made (or last upgraded) by the Optuna version now
    running and carry their Alembic revision: such a file needs neither table creation, nor a
    schema check against Optuna's migrations, nor Alembic at all (importing it costs ~0.5 s, a
    quarter of a tiny sweep's fixed cost). Any other file gets all three."""
    if path is None or not path.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60) as connection:
            row = connection.execute("SELECT library_version FROM version_info").fetchone()
            stamped = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:  # no such table yet: a new or foreign file
        return False
    return row is not None and row[0] == optuna.__version__ and stamped is not None and bool(stamped[0])


@contextmanager
def _alembic_left_alone(known: bool) -> Iterator[None]:
    """While RDBStorage opens a file _written_by_this_optuna, skip the Alembic set-up its
    version manager always runs: on a stamped file it only reads the revision back, after
    importing Alembic. Any other file (or an Optuna without this method) gets the set-up."""
    from optuna.storages._rdb import storage as rdb

    manager = getattr(rdb, "_VersionManager", None)
    if not known or manager is None or not hasattr(manager, "_init_alembic"):
        yield
        return
    original = manager._init_alembic
    manager._init_alembic = lambda self: None
    try:
        yield
    finally:
        manager._init_alembic = original


def supports_heartbeat(storage: BaseStorage) -> bool:
    return isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None


class _FileLock(AbstractContextManager):
    """An fcntl lock next to a local storage file (released by the kernel if its process dies)."""

    lost = False  # held until released: the kernel never takes it away

    def __init__(self, path: Path):
        self.path = path.with_name(path.name + ".claim-lock")
        self._handle = None

    def __enter__(self):
        self._handle = open(self.path, "a")
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class _PostgresLock(AbstractContextManager):
    """A PostgreSQL advisory lock: held by a database session, so it works across machines
    and is released by the server if the holder dies. The session is kept between claims
    (a new one is a server process forked per claim) and checked before each use."""

    NAMESPACE = 0x61766221  # "avb!": keeps our keys apart from other users of advisory locks

    def __init__(self, url: str, study: str):
        import sqlalchemy

        self._text = sqlalchemy.text
        self._engine = sqlalchemy.create_engine(
            url,
            pool_size=1,
            pool_pre_ping=True,
            isolation_level="AUTOCOMMIT",  # lock and unlock are one statement each, no transaction
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        self._where = display_url(url)
        self._key = zlib.crc32(study.encode()) - 2**31  # int4
        self._connection = None

    def __enter__(self):
        from avbench.sweep.reconnect import retrying

        self._connection = retrying(self._lock, self._where)
        self.lost = False
        return self

    def _lock(self):
        connection = self._engine.connect()
        try:
            connection.execute(
                self._text("SELECT pg_advisory_lock(:ns, :key)"), {"ns": self.NAMESPACE, "key": self._key}
            )
        except BaseException:
            connection.invalidate()  # never back to the pool: an interrupted wait may still be granted
            raise
        return connection

    def __exit__(self, *exc) -> None:
        from avbench.sweep.reconnect import connection_lost

        try:
            self._connection.execute(
                self._text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": self.NAMESPACE, "key": self._key}
            )
        except Exception as error:
            self._connection.invalidate()
            if not connection_lost(error):
                raise
            # The server went away while the lock was held: it released the lock with the
            # session, so another worker may have claimed at the same time (see claim_trial).
            self.lost = True
        finally:
            self._connection.close()


def claim_lock(url: str, study: str) -> AbstractContextManager:
    path = storage_file(url)
    if path is not None:
        return _FileLock(path)
    return _PostgresLock(url, study)


def list_study_names(storage: BaseStorage) -> list[str]:
    return sorted(optuna.get_all_study_names(storage))
