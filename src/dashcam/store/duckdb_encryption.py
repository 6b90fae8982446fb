"""Encryption at rest for the embedded DuckDB store: the key, opening an encrypted file, re-keying.

DuckDB encrypts a database file with AES-256-GCM (every block, and the write-ahead log; temporary
files too once ``temp_file_encryption`` is on) under a key derived from the string it is given.
dashcam takes that string from ``DASHCAM_STORE_KEY``, or from the file ``DASHCAM_STORE_KEY_FILE``
(``--store-key-file``) names, and never stores it in the data directory.

DuckDB reads encrypted files with the crypto it carries, but only *writes* them with OpenSSL, from
its ``httpfs`` extension: its own fallback draws GCM nonces from a non-cryptographic generator,
and a repeated nonce under one key breaks GCM. dashcam therefore loads ``httpfs`` (never fetching
it: it must be installed, by ``INSTALL httpfs`` or ``pip install 'dashcam[encryption]'``) before
writing an encrypted store, and refuses with a ConfigError if it cannot. Where httpfs is missing
(the default install's DuckDB has no build of it on PyPI), the test suite sets
:data:`UNSAFE_TEST_CRYPTO` to write with DuckDB's fallback: the same cipher and file format, weaker
nonces — never set it anywhere else. CI runs the encryption tests a second time with the
``encryption`` extra, where they write with OpenSSL.
"""

from __future__ import annotations

import os
from importlib import util as importlib_util
from pathlib import Path

import duckdb

from dashcam.errors import ConfigError, StoreBusyError, StoreError

STORE_KEY_ENV = "DASHCAM_STORE_KEY"
STORE_KEY_FILE_ENV = "DASHCAM_STORE_KEY_FILE"
ATTACHED_AS = "store"
MIN_KEY_CHARS = 16

# See the module docstring: only the test suite sets this.
UNSAFE_TEST_CRYPTO = False

_HOW_TO_GIVE_A_KEY = (f"give its key with {STORE_KEY_ENV}, or a key file with --store-key-file / "
                      f"{STORE_KEY_FILE_ENV}")


def read_key_file(path: str | Path) -> str:
    """The key in ``path`` (surrounding whitespace ignored); a ConfigError if it is unusable."""
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the store key file {path}: {exc}") from None
    return check_key(key, f"the store key file {path}")


def check_key(key: str, where: str) -> str:
    """``key`` if it is long enough to be a key rather than a password; else a ConfigError."""
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"{where} holds {len(key)} characters; a store key needs at least {MIN_KEY_CHARS} "
                          "(make one with: head -c 32 /dev/urandom | base64)")
    return key


def key_from_environment() -> str | None:
    """The store key ``DASHCAM_STORE_KEY`` holds, else the one in ``DASHCAM_STORE_KEY_FILE``, else None."""
    key = os.environ.get(STORE_KEY_ENV)
    if key:
        return check_key(key.strip(), STORE_KEY_ENV)
    key_file = os.environ.get(STORE_KEY_FILE_ENV)
    return read_key_file(key_file) if key_file else None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _load_openssl(con: duckdb.DuckDBPyConnection, *, force: bool = False) -> None:
    """Load httpfs (OpenSSL) from DuckDB's extension directory or a pip package shipping it
    (``pip install 'dashcam[encryption]'``)."""
    if UNSAFE_TEST_CRYPTO and not force:
        return
    candidates = ["httpfs"]
    spec = importlib_util.find_spec("duckdb_extension_httpfs")
    if spec and spec.origin:
        shipped = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
        candidates.append(str(shipped))
    for candidate in candidates:
        try:
            con.execute(f"LOAD {_sql_string(candidate)}")
            return
        except duckdb.Error:
            continue
    raise ConfigError(
        f"writing an encrypted store needs DuckDB's httpfs extension (its OpenSSL crypto) for DuckDB "
        f"{duckdb.__version__}, and it is not installed here: install it (INSTALL httpfs, where DuckDB's "
        "extension repository can be reached), or pip install 'dashcam[encryption]' (DuckDB 1.5.5 with "
        "httpfs from PyPI), or open the store read-only")


def openssl_available() -> bool:
    """Whether DuckDB can load httpfs here, so that encrypted stores may be written."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        _load_openssl(con, force=True)
        return True
    except ConfigError:
        return False
    finally:
        con.close()


def connect_encrypted(path: Path, key: str, options: list[str]) -> duckdb.DuckDBPyConnection:
    """A connection whose default database is the encrypted file ``path`` (created if missing),
    attached with ``options`` (``READ_ONLY`` among them to open it read-only)."""
    config: dict[str, object] = {"autoinstall_known_extensions": False}
    if UNSAFE_TEST_CRYPTO:
        config["force_mbedtls_unsafe"] = True
    read_only = "READ_ONLY" in options
    con = duckdb.connect(":memory:", config=config)
    try:
        if not read_only:
            _load_openssl(con)
            con.execute("SET temp_file_encryption = true")  # spilled query data is events too
        existed = path.exists()
        attach(con, path, ATTACHED_AS, ", ".join([f"ENCRYPTION_KEY {_sql_string(key)}", *options]))
        encrypted = con.execute("SELECT encrypted FROM duckdb_databases() WHERE database_name = ?",
                                [ATTACHED_AS]).fetchone()[0]
        if existed and not encrypted:
            raise ConfigError(f"the store {path} is not encrypted, but a store key was given: encrypt it with "
                              "'dashcam store encrypt --key-file FILE', or unset the key")
        con.execute(f"USE {ATTACHED_AS}")
        return con
    except BaseException:
        con.close()
        raise


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, options: str) -> None:
    """ATTACH the database file ``path`` as ``alias`` with ``options``; DuckDB's refusal as dashcam's
    error. Its temp files (spilled query data) go beside it rather than into the working directory."""
    try:
        con.execute(f"ATTACH {_sql_string(str(path))} AS {alias}" + (f" ({options})" if options else ""))
    except duckdb.Error as exc:
        raise translate_open_error(exc, path) from None
    con.execute(f"SET temp_directory = {_sql_string(str(path) + '.tmp')}")


def translate_open_error(exc: duckdb.Error, path: Path) -> Exception:
    """The dashcam error for DuckDB's refusal to open ``path``."""
    text = str(exc)
    lowered = text.lower()
    if "without a key" in lowered:
        return ConfigError(f"the store {path} is encrypted: {_HOW_TO_GIVE_A_KEY}")
    if "wrong encryption key" in lowered:
        return ConfigError(f"the store key does not open {path} (it was encrypted with another key): "
                           f"{_HOW_TO_GIVE_A_KEY}")
    if "is not encrypted" in lowered:
        return ConfigError(f"the store {path} is not encrypted, but a store key was given: encrypt it with "
                           "'dashcam store encrypt --key-file FILE', or unset the key")
    if "crypto module" in lowered:
        return ConfigError("writing an encrypted store needs DuckDB's httpfs extension (OpenSSL); "
                           "install it, or open the store read-only")
    if (isinstance(exc, duckdb.IOException) and "lock" in lowered) or "already attached" in lowered:
        return StoreBusyError(f"the data directory {path.parent} is in use by another dashcam process; "
                              "stop it, or ask it over its HTTP API")
    return StoreError(f"cannot open {path}: {text}")


def rekey(path: Path, old_key: str | None, new_key: str | None) -> dict[str, int]:
    """Rewrite the store file ``path`` under ``new_key`` (None: unencrypted), reading it with
    ``old_key`` (None: it is not encrypted). The copy is written beside it, checked table by table
    (row counts), then swapped in with one rename: an interruption leaves the old file as it was.
    Returns the row count of each table. The store must not be open anywhere."""
    target = path.with_name(path.name + ".rekey")
    for leftover in (target, target.with_name(target.name + ".wal")):
        leftover.unlink(missing_ok=True)  # from an interrupted earlier attempt: never swapped in
    config: dict[str, object] = {"autoinstall_known_extensions": False}
    if UNSAFE_TEST_CRYPTO:
        config["force_mbedtls_unsafe"] = True
    con = duckdb.connect(":memory:", config=config)
    try:
        _load_openssl(con)
        con.execute("SET temp_file_encryption = true")
        try:
            attach(con, path, "source", f"ENCRYPTION_KEY {_sql_string(old_key)}" if old_key else "")
        except ConfigError as exc:
            if old_key is None and "is encrypted" in str(exc):
                raise ConfigError(f"the store {path} is already encrypted: use 'dashcam store rotate-key'") from None
            raise
        # Fold the write-ahead log into the file: the old log must not outlive the swap.
        con.execute("CHECKPOINT source")
        attach(con, target, "target", f"ENCRYPTION_KEY {_sql_string(new_key)}" if new_key else "")
        con.execute("COPY FROM DATABASE source TO target")
        tables = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'source' ORDER BY table_name").fetchall()]
        counts: dict[str, int] = {}
        for table in tables:
            before = con.execute(f'SELECT count(*) FROM source.main."{table}"').fetchone()[0]
            after = con.execute(f'SELECT count(*) FROM target.main."{table}"').fetchone()[0]
            if before != after:
                raise StoreError(f"re-keying {path} copied {after} of {before} rows of {table}; "
                                 "the store was left as it was")
            counts[table] = int(before)
        con.execute("CHECKPOINT target")
        con.execute("DETACH target")
        con.execute("DETACH source")
    except duckdb.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreError(f"re-keying {path} failed, the store was left as it was: {exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    with open(target, "rb") as copy:
        os.fsync(copy.fileno())
    os.replace(target, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)  # emptied by the checkpoint above
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself must survive a crash
    finally:
        os.close(directory)
    return counts
