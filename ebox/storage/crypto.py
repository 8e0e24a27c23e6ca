"""Encryption at rest: a fresh AES-256-GCM data key per document, wrapped by the master key.

Object format, version 1 (everything an object in the store contains):

    offset   size  field
    0        4     magic b"EBXC" (eBox content)
    4        1     format version, 0x01
    5        12    GCM nonce, random for every object
    17       n     ciphertext, as long as the plaintext
    17 + n   16    GCM authentication tag

Associated data (authenticated, never stored): bytes 0-4 (magic and version) followed by the
storage key in UTF-8. An object copied or moved under another key, or given another version
byte, fails to authenticate.

The data key (32 random bytes) never reaches the store. It is wrapped with the master key by
AES key wrap (RFC 3394); the 40 wrapped bytes live in the document's database row next to the
master key's id, so deleting them makes the object unreadable at once (crypto-shredding).

Both directions work in chunks through a spooled temporary file: a large document is never
held twice in memory, and decrypted bytes are only handed out once the tag has been verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import AEADDecryptionContext, Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ebox.storage.backends import Readable
from ebox.storage.errors import ContentIntegrityError, MasterKeyError

MAGIC = b"EBXC"
VERSION = 1
PREFIX = MAGIC + bytes([VERSION])
NONCE_BYTES = 12
HEADER_BYTES = len(PREFIX) + NONCE_BYTES
TAG_BYTES = 16
KEY_BYTES = 32
WRAPPED_KEY_BYTES = KEY_BYTES + 8
CHUNK_BYTES = 256 * 1024
# Small documents (most of them) stay in memory; larger ones go to an unlinked temporary file.
SPOOL_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class EncryptedObject:
    """An encrypted object ready for the store (`file` is at 0) and facts about its plaintext."""

    file: BinaryIO
    size_bytes: int
    sha256: str


def validate_master_key(value: str, *, setting: str = "EBOX_MASTER_KEY") -> None:
    """Raise MasterKeyError unless `value` is base64 of exactly 32 bytes; the message names
    `setting` (where the key came from), never the key."""
    _decode_master_key(value, setting)


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def wrap_data_key(data_key: bytes, *, master_key: str) -> bytes:
    return aes_key_wrap(_decode_master_key(master_key), data_key)


def unwrap_data_key(wrapped: bytes, *, master_key: str, master_key_id: str) -> bytes:
    if len(wrapped) != WRAPPED_KEY_BYTES:
        raise ContentIntegrityError(
            f"the content key has {len(wrapped)} bytes, not {WRAPPED_KEY_BYTES}: it is damaged"
        )
    try:
        return aes_key_unwrap(_decode_master_key(master_key), wrapped)
    except InvalidUnwrap as exc:
        raise MasterKeyError(
            f"the content key does not unwrap with master key {master_key_id!r}: "
            "that master key is wrong or the content key is damaged"
        ) from exc


def encrypt(source: BinaryIO | bytes, *, data_key: bytes, storage_key: str) -> EncryptedObject:
    """Encrypt `source` (read from its current position) into a spooled temporary file."""
    nonce = os.urandom(NONCE_BYTES)
    encryptor = Cipher(algorithms.AES(data_key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(_associated_data(storage_key))
    digest, size, out = hashlib.sha256(), 0, _spool()
    try:
        out.write(PREFIX + nonce)
        for chunk in _chunks(source):
            digest.update(chunk)
            size += len(chunk)
            out.write(encryptor.update(chunk))
        out.write(encryptor.finalize() + encryptor.tag)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return EncryptedObject(file=out, size_bytes=size, sha256=digest.hexdigest())


def decrypt(stream: Readable, *, data_key: bytes, storage_key: str) -> BinaryIO:
    """The authenticated plaintext of an object, in a file at position 0: else an error."""
    nonce = _read_header(stream, storage_key)
    if len(data_key) != KEY_BYTES:
        raise ContentIntegrityError(f"the content key of {storage_key!r} is not an AES-256 key")
    decryptor = Cipher(algorithms.AES(data_key), modes.GCM(nonce)).decryptor()
    decryptor.authenticate_additional_data(_associated_data(storage_key))
    out = _spool()
    try:
        tag = _decrypt_body(stream, decryptor, out, storage_key)
        decryptor.finalize_with_tag(tag)
    except InvalidTag as exc:
        out.close()  # the unauthenticated plaintext is discarded, never returned
        raise ContentIntegrityError(
            f"object {storage_key!r} fails authentication: it was altered, moved from another "
            "key, or the content key is not this object's"
        ) from exc
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _read_header(stream: Readable, storage_key: str) -> bytes:
    header = stream.read(HEADER_BYTES)
    while 0 < len(header) < HEADER_BYTES:
        more = stream.read(HEADER_BYTES - len(header))
        if not more:
            break
        header += more
    if len(header) < HEADER_BYTES or header[: len(MAGIC)] != MAGIC:
        raise ContentIntegrityError(f"object {storage_key!r} is not an eBox encrypted object")
    if header[len(MAGIC)] != VERSION:
        raise ContentIntegrityError(
            f"object {storage_key!r} has unknown format version {header[len(MAGIC)]}"
        )
    return header[len(PREFIX) :]


def _decrypt_body(
    stream: Readable, decryptor: AEADDecryptionContext, out: IO[bytes], storage_key: str
) -> bytes:
    """Decrypt everything but the last TAG_BYTES, which are returned: the tag."""
    tail = b""
    while chunk := stream.read(CHUNK_BYTES):
        pending = tail + chunk
        out.write(decryptor.update(pending[:-TAG_BYTES]))
        tail = pending[-TAG_BYTES:]
    if len(tail) < TAG_BYTES:
        raise ContentIntegrityError(f"object {storage_key!r} is truncated")
    return tail


def _associated_data(storage_key: str) -> bytes:
    return PREFIX + storage_key.encode("utf-8")


def _chunks(source: BinaryIO | bytes) -> Iterator[bytes | memoryview]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_BYTES):
            yield view[start : start + CHUNK_BYTES]
        return
    while chunk := source.read(CHUNK_BYTES):
        yield chunk


def _spool() -> BinaryIO:
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES, mode="w+b"))


def _decode_master_key(value: str, setting: str = "EBOX_MASTER_KEY") -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError(
            f"{setting} is not valid base64: it must be base64 of 32 random bytes"
        ) from exc
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            f"{setting} must be base64 of exactly {KEY_BYTES} bytes, it decodes to {len(key)}"
        )
    return key
