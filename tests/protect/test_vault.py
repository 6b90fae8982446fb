"""Encrypted originals: never on disk in plain text, found by (group, event id), expired with
retention, and re-encrypted when the unmask key is rotated."""

from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet, InvalidToken

from dashcam.errors import ConfigError
from dashcam.protect.vault import KEY_ENV, KEY_FILE, VAULT_FILE, OriginalsVault

SECRET = "card 4111111111111111 of jane@example.com"
DAY = 86_400_000


def test_originals_are_encrypted_at_rest_and_found_by_event(tmp_path):
    vault = OriginalsVault(tmp_path)
    vault.put([("/g", 1, 1000, SECRET), ("/g", 2, 1000, "other"), ("/h", 1, 1000, "in h")])
    vault.put([("/g", 1, 1000, "a re-delivery keeps the first original")])
    assert vault.get("/g", [1, 2, 3]) == {1: SECRET, 2: "other"}
    assert vault.get("/h", [1]) == {1: "in h"}
    vault.close()
    for name in os.listdir(tmp_path):
        assert b"4111111111111111" not in (tmp_path / name).read_bytes() and b"jane@" not in (tmp_path / name).read_bytes()
    assert oct(os.stat(tmp_path / VAULT_FILE).st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / KEY_FILE).st_mode & 0o777) == "0o600"
    assert OriginalsVault(tmp_path).get("/g", [1]) == {1: SECRET}  # durable, readable by another process


def test_nothing_kept_means_nothing_to_unmask_and_no_files(tmp_path):
    vault = OriginalsVault(tmp_path)
    assert vault.get("/g", [1]) == {} and vault.count() == 0
    assert not (tmp_path / VAULT_FILE).exists() and not (tmp_path / KEY_FILE).exists()


def test_expiry_follows_each_groups_retention_and_deleting_a_group_forgets_it(tmp_path):
    vault = OriginalsVault(tmp_path)
    now = 100 * DAY
    vault.put([("/g", 1, now - 8 * DAY, "old"), ("/g", 2, now - 6 * DAY, "recent"), ("/h", 3, now - 30 * DAY, "kept"),
               ("/g", 4, None, "no time: by when it was kept")])
    assert vault.delete_expired({"/g": 7}, now) == 1
    assert vault.get("/g", [1, 2, 4]) == {2: "recent", 4: "no time: by when it was kept"}
    assert vault.get("/h", [3]) == {3: "kept"}  # /h has no retention
    assert vault.delete_group("/g") == 2 and vault.count() == 1


def test_rotation_re_encrypts_under_a_new_key_and_forgets_the_old(tmp_path):
    vault = OriginalsVault(tmp_path)
    vault.put([("/g", i, None, f"{SECRET} #{i}") for i in range(5)])
    old_key = (tmp_path / KEY_FILE).read_bytes().strip()
    assert vault.rotate() == 5
    new_key = (tmp_path / KEY_FILE).read_bytes().strip()
    assert new_key != old_key and b"\n" not in new_key  # only the new key is left
    assert OriginalsVault(tmp_path).get("/g", range(5)) == {i: f"{SECRET} #{i}" for i in range(5)}
    vault.close()
    import sqlite3

    token = sqlite3.connect(tmp_path / VAULT_FILE).execute("SELECT ciphertext FROM originals LIMIT 1").fetchone()[0]
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(token)
    assert Fernet(new_key).decrypt(token).decode().startswith(SECRET)


def test_the_key_may_come_from_the_environment_and_a_wrong_one_is_named(tmp_path, monkeypatch):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(KEY_ENV, first)
    vault = OriginalsVault(tmp_path)
    vault.put([("/g", 1, None, SECRET)])
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv(KEY_ENV, f"{second},{first}")  # a new key first: old originals still readable
    assert vault.get("/g", [1]) == {1: SECRET}
    assert vault.rotate() == 1
    monkeypatch.setenv(KEY_ENV, second)
    assert vault.get("/g", [1]) == {1: SECRET}
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        vault.get("/g", [1])
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(ConfigError, match=KEY_ENV):
        vault.get("/g", [1])
