"""The archive's settings (``archive.json`` in the data directory) and its file encryption.

Settings: the hot window in days (events older than that many whole UTC days move to Parquet),
the destination (a local directory or ``s3://bucket/prefix``), and optionally a key file. The
key itself is never in ``archive.json``: it is read from ``DASHCAM_ARCHIVE_KEY`` if set, else
from the key file the settings name.

Encryption is of whole files with AES-256-GCM (``cryptography``), the partition's path bound in
as associated data so a file cannot be swapped for another partition's. Parquet's own modular
encryption was the other candidate, but DuckDB writes it only with its httpfs extension loaded
(not available offline) and does not read pyarrow's, so queries could not stay transparent.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dashcam.errors import ConfigError, StoreError

CONFIG_FILE = "archive.json"
KEY_ENV = "DASHCAM_ARCHIVE_KEY"
MAX_HOT_DAYS = 3653
_MAGIC = b"DCARCH1\n"     # marks an encrypted archive file (plain Parquet starts with PAR1)
_NONCE_BYTES = 12


@dataclass(frozen=True)
class ArchiveConfig:
    """Where and when events are archived; ``key_file`` set means files are encrypted."""

    hot_days: int
    destination: str
    key_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hot_days, int) or not 1 <= self.hot_days <= MAX_HOT_DAYS:
            raise ConfigError(f"the hot window must be 1 to {MAX_HOT_DAYS} days, not {self.hot_days!r}")
        if not self.destination:
            raise ConfigError("the archive needs a destination: a directory or s3://bucket/prefix")
        if self.destination.startswith("s3://") and not self.destination[5:].split("/", 1)[0]:
            raise ConfigError(f"{self.destination!r} names no bucket")

    @property
    def encrypted(self) -> bool:
        """Whether archive files are encrypted."""
        return self.key_file is not None

    def to_json(self) -> dict:
        """The settings as ``archive.json`` holds them."""
        return {"hotDays": self.hot_days, "destination": self.destination, "encryptKeyFile": self.key_file}


def load_config(data_dir: str | Path) -> ArchiveConfig | None:
    """The data directory's archive settings, or None when archiving is not configured."""
    path = Path(data_dir) / CONFIG_FILE
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict) or "hotDays" not in raw or "destination" not in raw:
        raise ConfigError(f"{path} must be an object with hotDays and destination")
    return ArchiveConfig(raw["hotDays"], raw["destination"], raw.get("encryptKeyFile"))


def save_config(data_dir: str | Path, config: ArchiveConfig) -> Path:
    """Write ``archive.json`` (0600, replaced atomically); returns its path."""
    path = Path(data_dir) / CONFIG_FILE
    write_private(path, orjson.dumps(config.to_json(), option=orjson.OPT_INDENT_2))
    return path


def configure(data_dir: str | Path, *, hot_days: int, destination: str, key_file: str | None = None) -> ArchiveConfig:
    """Validate and save settings; a local destination and key file are made absolute, and a key
    file that does not exist yet is created with a new random key (0600)."""
    if not destination.startswith("s3://"):
        if "://" in destination:
            raise ConfigError(f"archive destination {destination!r}: use a directory or s3://bucket/prefix")
        destination = str(Path(destination).expanduser().resolve())
    if key_file is not None:
        key_path = Path(key_file).expanduser().resolve()
        if not key_path.exists():
            write_private(key_path, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
        read_key_file(key_path)  # refuse a file that holds no usable key now, not at the first run
        key_file = str(key_path)
    config = ArchiveConfig(hot_days, destination, key_file)
    save_config(data_dir, config)
    return config


def read_key_file(path: str | Path) -> bytes:
    """The 256-bit key in ``path`` (base64 text); ConfigError when missing or malformed."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the archive key file {path}: {exc}") from None
    return _decode_key(text, str(path))


def archive_key(config: ArchiveConfig) -> bytes | None:
    """The encryption key: ``$DASHCAM_ARCHIVE_KEY`` if set, else the key file; None when the
    archive is not encrypted."""
    if not config.encrypted:
        return None
    return env_key() or read_key_file(config.key_file or "")


def env_key() -> bytes | None:
    """The key ``$DASHCAM_ARCHIVE_KEY`` holds, or None when it is not set."""
    from_env = os.environ.get(KEY_ENV, "").strip()
    return _decode_key(from_env, KEY_ENV) if from_env else None


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{where} must hold a 256-bit key in base64 (44 characters)")
    return key


def encrypt(data: bytes, key: bytes, name: str) -> bytes:
    """``data`` sealed with AES-256-GCM; ``name`` (the partition path) is authenticated with it."""
    nonce = os.urandom(_NONCE_BYTES)
    return _MAGIC + nonce + AESGCM(key).encrypt(nonce, data, name.encode())


def decrypt(blob: bytes, key: bytes | None, name: str) -> bytes:
    """The plaintext of an archive file (returned as is when it is not encrypted); StoreError when
    the key is missing or wrong, or the file was altered or moved."""
    if not blob.startswith(_MAGIC):
        return blob
    if key is None:
        raise StoreError(f"archive file {name} is encrypted and no archive key is configured")
    nonce = blob[len(_MAGIC):len(_MAGIC) + _NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(_MAGIC) + _NONCE_BYTES:], name.encode())
    except InvalidTag:
        raise StoreError(f"archive file {name} cannot be decrypted: wrong key, or the file was altered") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
