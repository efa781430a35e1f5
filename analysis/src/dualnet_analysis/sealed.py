"""The seal dualnet writes into the 512-byte HDF5 user block of metrics.h5 and checkpoints.

A sealed file starts with exactly "dualnet-sealed 1\\nkind <kind>\\nbytes <N>\\nsha256 <hex>\\n"
and zero bytes up to 512; N is the length of the rest of the file and the hash is over it.
The rules mirror dualnet's own reader (src/io/sealed_file.cpp): the block must be the
canonical one byte for byte, the kind and the length must match, and so must the hash, or
the file is refused before HDF5 parses any of it (damaged HDF5 metadata can hang or crash
the HDF5 library). Files of format version 1 carry no seal and are read as before.
"""

import hashlib
import os
import re
import stat

from .errors import InputError

SEAL_BYTES = 512
MAGIC = b"dualnet-sealed "
VERSION = b"1"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK = 1 << 20
_FIELDS = re.compile(rb"dualnet-sealed ([0-9]{1,8})\nkind ([a-z0-9_-]{1,32})\n"
                     rb"bytes ([0-9]{1,18})\nsha256 ([0-9a-f]{64})\n")


def seal_block(kind, nbytes, hexdigest):
    """The canonical seal of a body of `nbytes` bytes with this SHA-256."""
    text = b"%s%s\nkind %s\nbytes %d\nsha256 %s\n" % (MAGIC, VERSION, kind.encode(), nbytes, hexdigest.encode())
    return text[:SEAL_BYTES].ljust(SEAL_BYTES, b"\0")


def _open_regular(path):
    """A descriptor of `path` if it is a regular file; never waits on a FIFO (O_NONBLOCK)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot be opened ({err.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{path}: {'is a directory' if stat.S_ISDIR(mode) else 'not a regular file'}")
    return fd


def verify_if_sealed(path, kind="metrics"):
    """True after verifying a sealed file; False for a file without a user block (format
    version 1, or not dualnet's: the caller's own checks apply); InputError for a file with
    a user block but no intact seal, which only damage produces."""
    fd = _open_regular(path)
    try:
        head = os.pread(fd, SEAL_BYTES + len(HDF5_SIGNATURE), 0)
    finally:
        os.close(fd)
    if head.startswith(MAGIC):
        verify_sealed(path, kind)
        return True
    if head[SEAL_BYTES:] == HDF5_SIGNATURE:
        raise InputError(f"{path}: damaged (its dualnet seal is missing or not intact)")
    return False


def verify_sealed(path, kind="metrics"):
    """Raise InputError (one line naming the file) unless `path` is an intact sealed file of `kind`."""
    fd = _open_regular(path)
    try:
        size = os.fstat(fd).st_size
        block = os.pread(fd, SEAL_BYTES, 0)
        if not block.startswith(MAGIC):
            if size == 0:
                raise InputError(f"{path}: empty file")
            raise InputError(f"{path}: no dualnet seal (written by an older dualnet, by another program, or damaged)")
        if len(block) < SEAL_BYTES:
            raise InputError(f"{path}: truncated ({size} bytes)")
        match = _FIELDS.match(block)
        if match is None:
            raise InputError(f"{path}: damaged (its dualnet seal cannot be read)")
        version, found_kind, nbytes, hexdigest = match.groups()
        if version != VERSION:
            raise InputError(f"{path}: seal version {version.decode()}, which this analysis does not read "
                             "(written by a newer dualnet, or damaged)")
        nbytes = int(nbytes)
        if block != seal_block(found_kind.decode(), nbytes, hexdigest.decode()):
            raise InputError(f"{path}: damaged (its dualnet seal is not intact)")
        if found_kind.decode() != kind:
            raise InputError(f"{path}: a dualnet {found_kind.decode()} file, not a {kind} file")
        if size != SEAL_BYTES + nbytes:
            what = "truncated" if size < SEAL_BYTES + nbytes else "damaged"
            raise InputError(f"{path}: {what} ({size} bytes; it was written with {SEAL_BYTES + nbytes})")
        digest = hashlib.sha256()
        offset = SEAL_BYTES
        while offset < size:
            chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
            if not chunk:
                raise InputError(f"{path}: truncated (it shrank while being read)")
            digest.update(chunk)
            offset += len(chunk)
        if digest.hexdigest() != hexdigest.decode():
            raise InputError(f"{path}: damaged (its checksum does not match)")
    finally:
        os.close(fd)


def seal(path, kind="metrics"):
    """(Re)write the seal of a file that has a 512-byte user block, e.g. after editing it in a test."""
    with open(path, "r+b") as file:
        file.seek(SEAL_BYTES)
        if file.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            raise ValueError(f"{path}: no 512-byte user block before the HDF5 superblock")
        file.seek(SEAL_BYTES)
        digest, nbytes = hashlib.sha256(), 0
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            nbytes += len(chunk)
        file.seek(0)
        file.write(seal_block(kind, nbytes, digest.hexdigest()))
        file.flush()
        os.fsync(file.fileno())
