"""Who a POSIX access control list (Linux) lets read or write a file besides its owner.

With an ACL, a file's group permission bits show the ACL mask, not the owning group's access.
systemd hands a service its credentials (`LoadCredential=`) as a root-owned file that only the
service user may read, through a named-user ACL entry: its mode reads 0440 although no group
can read it. The secret-file check (safe_files.py) asks this module who really can.

The ACL is read from the `system.posix_acl_access` extended attribute, in the kernel's format
(linux/posix_acl_xattr.h): a little-endian u32 version (2), then 8-byte entries (u16 tag,
u16 permissions, u32 id).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER, _GROUP_OBJ, _GROUP, _MASK = 0x02, 0x04, 0x08, 0x10
_READ_WRITE = 0o6
_ENTRY = struct.Struct("<HHI")


class AclError(ValueError):
    """The extended attribute is not an ACL this module understands."""


def parse_acl(data: bytes) -> list[tuple[int, int, int]]:
    """(tag, permissions, id) of each entry."""
    if len(data) < 4 or (len(data) - 4) % _ENTRY.size or struct.unpack_from("<I", data)[0] != _VERSION:
        raise AclError("not a version 2 POSIX ACL")
    return [_ENTRY.unpack_from(data, offset) for offset in range(4, len(data), _ENTRY.size)]


def others_with_access(entries: list[tuple[int, int, int]], allowed_uids: set[int]) -> list[str]:
    """Entries that give read or write to anyone but the owner and `allowed_uids`: "group"
    (the owning group), "group 1001", "user 1002". The mask limits every one of them."""
    mask = next((perm for tag, perm, _ in entries if tag == _MASK), 0o7)
    found = []
    for tag, perm, ident in entries:
        if not perm & mask & _READ_WRITE:
            continue
        if tag == _GROUP_OBJ:
            found.append("group")
        elif tag == _GROUP:
            found.append(f"group {ident}")
        elif tag == _USER and ident not in allowed_uids:
            found.append(f"user {ident}")
    return found


def read_acl(path: Path | int) -> list[tuple[int, int, int]] | None:
    """The file's ACL entries, or None when it has none, the platform has no ACLs, or it
    cannot be read or understood: the caller then judges by the mode bits alone, which refuses
    the file. `path` may be an open descriptor (os.getxattr takes one)."""
    getxattr = getattr(os, "getxattr", None)
    if getxattr is None:
        return None
    try:
        return parse_acl(getxattr(path, _XATTR))
    except (OSError, AclError):  # ENODATA: no ACL; ENOTSUP: none on this file system
        return None
