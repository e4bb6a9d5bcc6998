"""Envelope encryption of account secrets.

Each tenant has a random 256-bit data key, stored wrapped (AES-GCM) by a master key from
``[secrets] master_keys``: the first master key wraps new and rotated data keys, every listed one
can unwrap. Account secrets are sealed with the tenant's data key, AES-GCM with the tenant and the
account name as associated data, so a ciphertext copied to another row (or tenant) does not open.
Deleting a tenant deletes its wrapped data key, and with it every way to read its secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipeline.errors import ConfigError, MailpipeError
from pipeline.secrets import SecretRef

FORMAT = b"\x01"
NONCE_BYTES = 12


class DecryptionError(MailpipeError):
    """A ciphertext did not open: wrong key, wrong row, or tampered with."""


def new_master_key() -> str:
    """A fresh master key, base64 (what ``mailpipe secrets new-master-key`` prints)."""
    return base64.b64encode(os.urandom(32)).decode()


def _decode_master(value: str, where: str) -> bytes:
    text = value.strip()
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    raise ConfigError([f"{where}: a master key must be 32 random bytes, base64-encoded (mailpipe secrets new-master-key)"])


@dataclass(frozen=True)
class MasterKey:
    key_id: str  # a fingerprint, stored beside each wrapped data key
    material: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, material: bytes) -> MasterKey:
        return cls(hashlib.sha256(b"mailpipe master key id" + material).hexdigest()[:16], material)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT:
        raise DecryptionError("not a mailpipe ciphertext")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionError("ciphertext does not open with this key and row") from None


def _data_key_aad(tenant_id: int) -> bytes:
    return f"mailpipe/data-key/v1/tenant={tenant_id}".encode()


def account_aad(tenant_id: int, account: str) -> bytes:
    return f"mailpipe/smtp-account/v1/tenant={tenant_id}/account={account}".encode()


class DataKey:
    """A tenant's unwrapped data key: seals and opens that tenant's secrets."""

    __slots__ = ("_key", "tenant_id")

    def __init__(self, tenant_id: int, key: bytes) -> None:
        self.tenant_id = tenant_id
        self._key = key

    def seal_secrets(self, account: str, secrets: dict[str, str]) -> bytes:
        return _seal(self._key, json.dumps(secrets, separators=(",", ":")).encode(), account_aad(self.tenant_id, account))

    def open_secrets(self, account: str, blob: bytes) -> dict[str, str]:
        data = json.loads(_open(self._key, blob, account_aad(self.tenant_id, account)))
        return {str(k): str(v) for k, v in data.items()}

    def __repr__(self) -> str:
        return f"DataKey(tenant_id={self.tenant_id})"


class Keyring:
    """The deployment's master keys; the first one wraps, every one unwraps."""

    UNWRAPPED_MAX = 1024

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        self.keys = list(keys)
        self._by_id = {key.key_id: key for key in self.keys}
        # Keyed by the wrapped bytes just read from the database: a rotated key is a new entry, and a
        # deleted tenant's row is never read again, so an entry can only serve the row it came from.
        self._unwrapped: OrderedDict[tuple[int, str, bytes], DataKey] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_refs(cls, refs: Sequence[SecretRef]) -> Keyring:
        keys = []
        for index, ref in enumerate(refs):
            where = f"secrets.master_keys[{index}]"
            error = ref.check()
            if error:
                raise ConfigError([f"{where}: {error}"])
            keys.append(MasterKey.from_bytes(_decode_master(ref.resolve().get_secret_value(), where)))
        return cls(keys)

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    @property
    def current(self) -> MasterKey:
        if not self.keys:
            raise ConfigError(["secrets.master_keys: no master key configured; account secrets cannot be stored"])
        return self.keys[0]

    def new_data_key(self, tenant_id: int) -> tuple[str, bytes]:
        """(master key id, wrapped data key) for a new tenant."""
        return self.wrap(tenant_id, os.urandom(32))

    def wrap(self, tenant_id: int, data_key: bytes) -> tuple[str, bytes]:
        master = self.current
        return master.key_id, _seal(master.material, data_key, _data_key_aad(tenant_id))

    def unwrap_raw(self, tenant_id: int, master_key_id: str, wrapped: bytes) -> bytes:
        master = self._by_id.get(master_key_id)
        if master is None:
            raise DecryptionError(f"tenant data key is wrapped by master key {master_key_id}, which is not configured")
        return _open(master.material, wrapped, _data_key_aad(tenant_id))

    def unwrap(self, tenant_id: int, master_key_id: str, wrapped: bytes) -> DataKey:
        """The tenant's data key, unwrapped once per (row, wrapping) and then held (LRU, UNWRAPPED_MAX)."""
        cache_key = (tenant_id, master_key_id, bytes(wrapped))
        with self._lock:
            found = self._unwrapped.get(cache_key)
            if found is not None:
                self._unwrapped.move_to_end(cache_key)
                return found
        key = DataKey(tenant_id, self.unwrap_raw(tenant_id, master_key_id, wrapped))
        with self._lock:
            self._unwrapped[cache_key] = key
            while len(self._unwrapped) > self.UNWRAPPED_MAX:
                self._unwrapped.popitem(last=False)
        return key

    def __repr__(self) -> str:
        return f"Keyring({[key.key_id for key in self.keys]})"
