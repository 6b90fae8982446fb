"""Encryption at rest of the embedded store: no event text in any file of the data directory,
clear errors without the key or with the wrong one, and `dashcam store encrypt | rotate-key`.

Without httpfs, the suite writes encrypted files with DuckDB's fallback crypto
(``UNSAFE_TEST_CRYPTO``; the same AES-GCM file format, weaker nonces), because PyPI has no OpenSSL
build of httpfs for the newest DuckDB; production refuses that fallback (see
``test_writes_refuse_insecure_crypto``). With the ``encryption`` extra installed (DuckDB 1.5.5 and
its httpfs), as in CI's second run, the same tests write with OpenSSL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import orjson
import pytest
from click.testing import CliRunner

from dashcam.cli import main
from dashcam.errors import ConfigError, StoreBusyError
from dashcam.service import Dashcam
from dashcam.store import duckdb_encryption
from dashcam.store.duckdb import DATABASE_FILE, DuckDBStore

# Encryption at rest is the DuckDB file's: these tests run on the embedded store whatever
# DASHCAM_STORE says (a key with a ClickHouse store is refused: the last tests).
pytestmark = pytest.mark.usefixtures("embedded_store")

MARKER = "zq-secret-marker-7f3a9c"
KEY = "a-store-key-of-enough-length-1"
OTHER_KEY = "another-store-key-of-length-2"


OPENSSL = duckdb_encryption.openssl_available()


@pytest.fixture(autouse=True)
def _fallback_crypto(monkeypatch):
    # With httpfs (the `encryption` extra, as CI's second run has) the tests write with OpenSSL.
    monkeypatch.setattr(duckdb_encryption, "UNSAFE_TEST_CRYPTO", not OPENSSL)
    monkeypatch.delenv(duckdb_encryption.STORE_KEY_ENV, raising=False)
    monkeypatch.delenv(duckdb_encryption.STORE_KEY_FILE_ENV, raising=False)


def _records_file(tmp_path: Path, count: int = 20) -> Path:
    lines = [orjson.dumps({
        "schemaType": "ModelInvocationLog", "timestamp": f"2026-03-02T10:00:{i:02d}Z", "requestId": f"req-{i}",
        "operation": "Converse", "modelId": "amazon.nova-lite-v1:0",
        "input": {"inputTokenCount": 3, "inputBodyJson": {"messages": [{"role": "user", "content": [
            {"text": f"the password is {MARKER} number {i}"}]}]}},
        "output": {"outputTokenCount": 5}}) for i in range(count)]
    path = tmp_path / "records.jsonl"
    path.write_bytes(b"\n".join(lines))
    return path


def _import(data: Path, tmp_path: Path, key: str | None) -> Dashcam:
    dashcam = Dashcam.open(data, store_key=key)
    # The marker is in the log group name too: names are stored uncompressed, so the unencrypted
    # control finds it in the file even after zstd has compressed the messages.
    dashcam.import_logs([_records_file(tmp_path)], log_group=f"/app/{MARKER}")
    return dashcam


def _files_holding(data: Path, needle: str) -> list[str]:
    return sorted(str(p.relative_to(data)) for p in data.rglob("*")
                  if p.is_file() and needle.encode() in p.read_bytes())


def _stored_request_ids(dashcam: Dashcam) -> set[str]:
    return {row["requestId"] for row in dashcam.query("fields requestId", limit=1000).rows}


@pytest.mark.parametrize("key", [KEY, None], ids=["encrypted", "unencrypted-control"])
def test_event_text_is_in_no_file_of_the_data_directory(tmp_path, key):
    data = tmp_path / "data"
    dashcam = _import(data, tmp_path, key)
    # Still open: the batch sits in the write-ahead log, not yet checkpointed into the file.
    assert (data / f"{DATABASE_FILE}.wal").exists()
    while_open = _files_holding(data, MARKER)
    assert len(_stored_request_ids(dashcam)) == 20
    dashcam.close()
    after_close = _files_holding(data, MARKER)
    if key:
        assert while_open == [] and after_close == []
    else:
        assert f"{DATABASE_FILE}.wal" in while_open
        assert DATABASE_FILE in after_close
    with Dashcam.open(data, store_key=key) as reopened:
        assert _stored_request_ids(reopened) == {f"req-{i}" for i in range(20)}


def test_an_encrypted_store_without_its_key_is_a_clear_config_error(tmp_path):
    data = tmp_path / "data"
    _import(data, tmp_path, KEY).close()
    with pytest.raises(ConfigError, match="is encrypted: give its key with DASHCAM_STORE_KEY"):
        Dashcam.open(data)
    with pytest.raises(ConfigError, match="does not open .* encrypted with another key"):
        Dashcam.open(data, store_key=OTHER_KEY)


def test_a_key_for_an_unencrypted_store_is_refused(tmp_path):
    data = tmp_path / "data"
    _import(data, tmp_path, None).close()
    with pytest.raises(ConfigError, match="not encrypted.*dashcam store encrypt"):
        Dashcam.open(data, store_key=KEY)


def test_the_key_comes_from_the_environment_or_a_key_file(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _import(data, tmp_path, KEY).close()
    key_file = tmp_path / "store.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.setenv(duckdb_encryption.STORE_KEY_FILE_ENV, str(key_file))
    with Dashcam.open(data) as dashcam:
        assert len(_stored_request_ids(dashcam)) == 20
    monkeypatch.delenv(duckdb_encryption.STORE_KEY_FILE_ENV)
    monkeypatch.setenv(duckdb_encryption.STORE_KEY_ENV, KEY)
    with Dashcam.open(data) as dashcam:
        assert len(_stored_request_ids(dashcam)) == 20
    monkeypatch.setenv(duckdb_encryption.STORE_KEY_ENV, "short")
    with pytest.raises(ConfigError, match="at least 16"):
        Dashcam.open(data)


def test_writes_refuse_insecure_crypto(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _import(data, tmp_path, KEY).close()
    monkeypatch.setattr(duckdb_encryption, "UNSAFE_TEST_CRYPTO", False)
    # Reading needs no OpenSSL: DuckDB's own crypto decrypts.
    reader = DuckDBStore(data, read_only=True, encryption_key=KEY)
    assert reader.execute("SELECT count(*) FROM events") == [(20,)]
    reader.close()
    if not OPENSSL:  # no httpfs for the installed DuckDB: writing is refused, naming what to install
        with pytest.raises(ConfigError, match=r"httpfs.*dashcam\[encryption\]"):
            DuckDBStore(data, encryption_key=KEY)
        return
    writer = DuckDBStore(data, encryption_key=KEY)  # with httpfs: written with OpenSSL
    loaded = writer._con.execute("SELECT loaded FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone()
    writer.write_records("/more", "s", [{"timestamp": "2026-03-02T11:00:00Z", "requestId": "req-x"}], source="api")
    writer.close()
    assert loaded == (True,)


def _cli(tmp_path: Path, data: Path, *args: str):
    # env: the --store-key-file callback exports the variable; CliRunner restores it afterwards.
    return CliRunner().invoke(main, ["--data", str(data), *args],
                              env={duckdb_encryption.STORE_KEY_FILE_ENV: None}, catch_exceptions=False)


def test_encrypt_then_rotate_the_key(tmp_path):
    data = tmp_path / "data"
    _import(data, tmp_path, None).close()
    old_file, new_file = tmp_path / "old.key", tmp_path / "new.key"
    old_file.write_text(KEY)
    new_file.write_text(OTHER_KEY)

    result = _cli(tmp_path, data, "store", "encrypt", "--key-file", str(old_file))
    assert result.exit_code == 0, result.output
    assert "events 20" in result.output
    assert _files_holding(data, MARKER) == []
    with pytest.raises(ConfigError):
        Dashcam.open(data)
    result = _cli(tmp_path, data, "--store-key-file", str(old_file), "query", "stats count(*) as n")
    assert result.exit_code == 0, result.output
    assert "20" in result.output

    again = _cli(tmp_path, data, "store", "encrypt", "--key-file", str(old_file))
    assert again.exit_code != 0 and "already encrypted" in again.output

    result = _cli(tmp_path, data, "store", "rotate-key", "--old-key-file", str(old_file),
                  "--new-key-file", str(new_file))
    assert result.exit_code == 0, result.output
    with pytest.raises(ConfigError, match="another key"):
        Dashcam.open(data, store_key=KEY)
    with Dashcam.open(data, store_key=OTHER_KEY) as dashcam:
        assert _stored_request_ids(dashcam) == {f"req-{i}" for i in range(20)}
        assert [g.name for g in dashcam.log_groups()] == [f"/app/{MARKER}"]
    assert not (data / f"{DATABASE_FILE}.rekey").exists()
    assert _files_holding(data, MARKER) == []


def test_rotation_refuses_a_store_in_use(tmp_path):
    data = tmp_path / "data"
    _import(data, tmp_path, KEY).close()
    # Another process holds the file open (and DuckDB's lock), as a running server does.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(config={'force_mbedtls_unsafe': True}); "
         f"c.execute(\"ATTACH '{data / DATABASE_FILE}' AS s (ENCRYPTION_KEY '{KEY}')\"); "
         "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusyError):
            duckdb_encryption.rekey(data / DATABASE_FILE, KEY, OTHER_KEY)
    finally:
        holder.communicate("", timeout=30)
    with Dashcam.open(data, store_key=KEY) as reopened:  # untouched
        assert len(_stored_request_ids(reopened)) == 20


def test_the_file_is_aes_gcm(tmp_path):
    data = tmp_path / "data"
    _import(data, tmp_path, KEY).close()
    con = duckdb.connect(config={"force_mbedtls_unsafe": True})
    con.execute(f"ATTACH '{data / DATABASE_FILE}' AS s (ENCRYPTION_KEY '{KEY}', READ_ONLY)")
    assert con.execute("SELECT encrypted, cipher FROM duckdb_databases() WHERE database_name = 's'").fetchone() \
        == (True, "GCM")
    con.close()


def test_a_key_with_a_clickhouse_store_is_refused_not_ignored(tmp_path, monkeypatch, chdb_url):
    # ClickHouse encrypts with its own disks: a key dashcam would silently not use is an error.
    url = chdb_url()
    with pytest.raises(ConfigError, match="encrypts the embedded DuckDB store.*chdb://"):
        Dashcam.open(tmp_path / "data", store=url, store_key=KEY)
    monkeypatch.setenv(duckdb_encryption.STORE_KEY_ENV, KEY)
    with pytest.raises(ConfigError, match="encrypts the embedded DuckDB store"):
        Dashcam.open(tmp_path / "data", store=url)
    monkeypatch.delenv(duckdb_encryption.STORE_KEY_ENV)
    key_file = tmp_path / "new.key"
    key_file.write_text(KEY)
    result = _cli(tmp_path, tmp_path / "data", "--store", url, "store", "encrypt", "--key-file", str(key_file))
    assert result.exit_code == 2 and "encrypts the embedded DuckDB store" in result.output, result.output


def test_an_encrypted_store_spills_beside_its_file_with_temp_files_encrypted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not into the working directory, where DuckDB would put them by default
    store = DuckDBStore(tmp_path / "data", encryption_key=KEY)
    try:
        settings = store.execute("SELECT current_setting('temp_directory'), current_setting('temp_file_encryption')")
        assert settings == [(str(store.path) + ".tmp", True)]
    finally:
        store.close()
