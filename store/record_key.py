"""The record's key: entries are chained with HMAC-SHA256 under a key kept outside the database.

A plain SHA-256 chain can be recomputed by anyone who can write the database, so a database
owner could change an entry and re-chain everything after it. With a key that lives only on
the hosts that write (a systemd credential, a 0600 file), re-chaining needs the key.

Where the key is read, first found wins: the file named by TAFANG_RECORD_KEY_FILE, the systemd
credential `$CREDENTIALS_DIRECTORY/record-key` (LoadCredential=record-key:…), the file named
by config `[record] key_file`. No key: the record stays a plain chain (demo and scratch
stores); `audit verify` and the daemon say so. The key is never logged or stored: only its
id (a keyed fingerprint) is.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV = "TAFANG_RECORD_KEY_FILE"
CREDENTIAL = "record-key"
MIN_BYTES = 16  # a shorter key is refused: a guessable key is no key


class RecordKeyError(Exception):
    """The key cannot be used: unreadable, too short, not the store's, or missing where the
    record is keyed. The message says which and where to look."""


class RecordKey:
    """HMAC-SHA256 with precomputed pads: as fast as the plain SHA-256 it replaces."""

    __slots__ = ("_inner", "_outer", "id", "source")

    def __init__(self, secret: bytes, source: str = "") -> None:
        if len(secret) < MIN_BYTES:
            raise RecordKeyError(
                f"record key from {source or 'the caller'} is {len(secret)} bytes; "
                f"at least {MIN_BYTES} are needed (e.g. `openssl rand -hex 32`)"
            )
        if len(secret) > 64:
            secret = hashlib.sha256(secret).digest()
        padded = secret.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        self.source = source
        self.id = self.mac(b"tafang record key id")[:16]

    def mac(self, body: bytes) -> str:
        """HMAC-SHA256(key, body) as hex (RFC 2104)."""
        inner = self._inner.copy()
        inner.update(body)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def mark(self, keyed_from: int) -> str:
        """The MAC of the migration point: where the keyed part of the record starts, so that
        moving that point in the database (to pass keyed entries off as plain) is seen."""
        return self.mac(f"tafang record keyed from {keyed_from}".encode())

    def __repr__(self) -> str:  # never the secret
        return f"RecordKey(id={self.id}, source={self.source!r})"


def read_key_file(path: str | Path, source: str) -> RecordKey:
    """A key from a file: its bytes, a trailing newline dropped (`openssl rand -hex 32 >`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise RecordKeyError(f"record key {source} ({path}): cannot read: {e.strerror or e}") from e
    return RecordKey(data.rstrip(b"\r\n"), f"{source} ({path})")


def load_record_key(config_file: str | None = None) -> RecordKey | None:
    """The record key from the first source that names one (see the module doc), or None."""
    if env := os.environ.get(ENV):
        return read_key_file(env, ENV)
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / CREDENTIAL).is_file():
        return read_key_file(Path(folder) / CREDENTIAL, "credential record-key")
    if config_file:
        return read_key_file(Path(config_file).expanduser(), "config record.key_file")
    return None
