"""Writing into a dataset without ever leaving it.

syncer runs as root and writes names that come from other people's services and
snapshots. Every file it puts into a dataset goes through write_file: the parent
folder is reached from the dataset's root one component at a time, never through
a symlink; the bytes go to a temporary file of syncer's own shape beside the
target, are checked against their digests, fsynced, renamed over the target and
the folder fsynced. A tree about to be moved into place whole (a restore's
staging tree) is checked by find_escaping_link and find_special_file.

A leaf module: lower layers (endpoints) and higher ones (actions) both use it.
"""

import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from syncer.errors import OperationalError
from syncer.verdict import OK, UNVERIFIABLE, Copy, judge

# A temporary file is `.syncer-tmp-` and 32 lowercase hex digits, nothing else. Only a
# name of exactly this shape is ever removed as a leftover; listings refuse it, so no
# authority can make a user's file look like one.
TEMPORARY_PREFIX = ".syncer-tmp-"
TEMPORARY_NAME = re.compile(r"\.syncer-tmp-[0-9a-f]{32}")
CHUNK_SIZE = 1 << 20
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # the kernel's limit of symlinks followed while resolving one path
DIGESTS = {"md5": hashlib.md5, "sha256": hashlib.sha256}


class UnsafePath(OperationalError):
    """A name that would lead outside the dataset (through a symlink, '..'), or onto
    something that is not a regular file. Nothing was written."""


class DigestMismatch(OperationalError):
    """The bytes read do not have the expected size or digest. Nothing was left behind."""


@dataclass(frozen=True)
class Written:
    """A file write_file put in place: its size, digests and stat (after the rename)."""

    size: int
    digests: dict
    info: os.stat_result


def temporary_name():
    """A new name of the exact shape is_temporary_name matches."""
    return TEMPORARY_PREFIX + secrets.token_hex(16)


def is_temporary_name(name):
    """Whether `name` (one path component) has the exact shape of syncer's temporary files."""
    return TEMPORARY_NAME.fullmatch(name) is not None


def split_relative(relative):
    """Return the components of a '/'-separated path below a root. Raise UnsafePath for
    an absolute path, a NUL byte, a '', '.' or '..' component, or a component of the
    shape of syncer's temporary files (it would be removed as a leftover)."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or "\x00" in relative or any(
            part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"{relative!r} is not a plain path below the dataset; not writing it")
    if any(is_temporary_name(part) for part in parts):
        raise UnsafePath(f"{relative} has the shape of syncer's temporary files; not writing it")
    return parts


def open_folder(root, parts, create=True):
    """Return a descriptor of the folder `parts` (components) below `root`, reached one
    component at a time with O_NOFOLLOW, creating missing folders when `create`.

    The root itself is opened as given: a dataset that is a symlink to a data disk is
    the user's layout. Raise UnsafePath when a component is a symlink or not a folder,
    FileNotFoundError when one is missing and not `create`.
    """
    descriptor = os.open(root, DIRECTORY_FLAGS)
    try:
        for depth, part in enumerate(parts):
            try:
                child = os.open(part, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=descriptor)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o777, dir_fd=descriptor)
                except FileExistsError:
                    pass  # made meanwhile: opened, and so checked, just below
                child = os.open(part, DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=descriptor)
            except OSError as error:
                if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = "/".join(parts[:depth + 1])
                if stat.S_ISLNK(os.stat(part, dir_fd=descriptor, follow_symlinks=False).st_mode):
                    raise UnsafePath(f"{where} is a symlink here; not writing through it")
                raise UnsafePath(f"{where} is a file here, a folder was expected")
            os.close(descriptor)
            descriptor = child
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def existing_file(folder, name, relative):
    """Return the lstat of `name` in the folder descriptor, or None when there is none.
    Raise UnsafePath when it is there and not a regular file."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "a folder" if stat.S_ISDIR(info.st_mode) \
            else "not a regular file"
        raise UnsafePath(f"{relative} exists here and is {kind}; not replacing it")
    return info


def write_file(root, relative, open_stream, expected=None, size=None, algorithms=(), mode=None, mtime_ns=None,
               keep_replaced=None, on_chunk=None, sync_folder=True):
    """Write the bytes of `open_stream()` (a context manager yielding a binary stream)
    as `relative` below `root`; return Written.

    The bytes go to a temporary file in the target's folder and are hashed on the way
    with `algorithms` and the keys of `expected` ({algorithm: hex}); only when the size
    equals `size` (if given) and every expected digest matches is the file fsynced,
    given its mode and renamed over the target. The mode is `mode` if given, else the
    replaced file's (without setuid/setgid), else 0o666 less the umask. With
    `keep_replaced` (a folder), a file being replaced is first linked (or copied) to
    `keep_replaced/relative`. `on_chunk(bytes)` is called per chunk (throttling).
    Without `sync_folder` the caller fsyncs the folder itself (once for many files).

    Raise UnsafePath (nothing written) when the target's folder cannot be reached
    without a symlink or the target is not a regular file; DigestMismatch when the
    bytes are not the expected ones (the temporary file removed, the target as it was);
    OSError from the disk.
    """
    parts = split_relative(relative)
    name = parts[-1]
    wanted = dict(expected or {})
    hashers = {algorithm: DIGESTS[algorithm]() for algorithm in {*algorithms, *wanted}}
    folder = open_folder(root, parts[:-1])
    temporary = None
    try:
        replaced = existing_file(folder, name, relative)
        if mode is None:
            mode = stat.S_IMODE(replaced.st_mode) & 0o1777 if replaced else None
        temporary = temporary_name()
        # A new file is created 0o666 so that the kernel applies the umask (reading the
        # umask would change it for every thread); a kept mode is set exactly below.
        descriptor = os.open(temporary, NEW_FILE_FLAGS, 0o666 if mode is None else mode & 0o777, dir_fd=folder)
        written = 0
        with os.fdopen(descriptor, "wb") as out, open_stream() as stream:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
                written += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
                if on_chunk:
                    on_chunk(len(chunk))
            out.flush()
            digests = {algorithm: hasher.hexdigest() for algorithm, hasher in hashers.items()}
            check_written(written, digests, size, wanted)
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            if mtime_ns is not None:
                os.utime(out.fileno(), ns=(time.time_ns(), mtime_ns))
            os.fsync(out.fileno())
        if keep_replaced is not None and existing_file(folder, name, relative):
            keep_copy(folder, name, os.path.join(keep_replaced, *parts))
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        temporary = None
        if sync_folder:
            os.fsync(folder)
        return Written(written, digests, os.stat(name, dir_fd=folder, follow_symlinks=False))
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary, dir_fd=folder)
            except FileNotFoundError:
                pass
        os.close(folder)


def check_written(written, digests, size, expected):
    """Raise DigestMismatch unless `written` bytes and `digests` are what was expected."""
    verdict = judge(Copy(size, {name: digest.lower() for name, digest in expected.items()}), Copy(written, digests),
                    there="expected")
    if verdict.status not in (OK, UNVERIFIABLE):  # unverifiable: nothing was expected but perhaps the size
        raise DigestMismatch(verdict.reason)


def keep_copy(folder, name, destination):
    """Keep the file `name` of the folder descriptor at `destination` (a hard link, or a
    copy on another filesystem) before it is replaced."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        os.link(name, destination, src_dir_fd=folder, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        with os.fdopen(source, "rb") as data, open(destination, "xb") as copy:
            shutil.copyfileobj(data, copy, CHUNK_SIZE)
            os.fchmod(copy.fileno(), stat.S_IMODE(os.fstat(data.fileno()).st_mode))


def move_file(root, relative, destination):
    """Move the file `relative` below `root` to `destination` (another folder, perhaps on
    another filesystem), reaching it without following a symlink on the way: a folder
    swapped for a link never moves a file from outside the dataset."""
    parts = split_relative(relative)
    folder = open_folder(root, parts[:-1], create=False)
    try:
        existing_file(folder, parts[-1], relative) or _missing(relative)
        keep_copy(folder, parts[-1], destination)
        os.unlink(parts[-1], dir_fd=folder)
    finally:
        os.close(folder)


def remove_file(root, relative):
    """Remove the file `relative` below `root` (reached as move_file does); a file already
    gone is not an error."""
    parts = split_relative(relative)
    try:
        folder = open_folder(root, parts[:-1], create=False)
    except FileNotFoundError:
        return
    try:
        if existing_file(folder, parts[-1], relative):
            os.unlink(parts[-1], dir_fd=folder)
    finally:
        os.close(folder)


def _missing(relative):
    raise FileNotFoundError(errno.ENOENT, "no such file", relative)


def fsync_folder(path):
    descriptor = os.open(path, DIRECTORY_FLAGS)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_temporaries(root, folder, folders=False):
    """Remove syncer's temporaries (exact shape only) from `folder` (relative, '' for
    the root) below `root`: its files, or with `folders` its folders and all they hold;
    return how many. A folder that is gone, or reached only through a symlink, is left
    alone, and so is a symlink of that shape (rmtree refuses one put there since)."""
    try:
        descriptor = open_folder(root, folder.split("/") if folder else [], create=False)
    except (FileNotFoundError, UnsafePath):
        return 0
    removed = 0
    try:
        with os.scandir(descriptor) as entries:
            names = [entry.name for entry in entries if is_temporary_name(entry.name)
                     and (entry.is_dir if folders else entry.is_file)(follow_symlinks=False)]
        for name in names:
            try:
                if folders:
                    shutil.rmtree(name, dir_fd=descriptor)
                else:
                    os.unlink(name, dir_fd=descriptor)
                removed += 1
            except FileNotFoundError:
                pass
    finally:
        os.close(descriptor)
    return removed


def make_temporary_folder(parent):
    """Create a folder of syncer's temporary shape in `parent` (mode 700); return its path.
    Should the process die before it is renamed or removed, the next run of the same
    step finds it by that exact shape (remove_temporaries)."""
    while True:
        path = Path(parent) / temporary_name()
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


# --- a tree about to be moved into place ------------------------------------------------


def find_escaping_link(root):
    """Return (relative path, link text) of the first symlink below `root` that resolves
    outside it, or None when every link stays inside.

    Each link is resolved the way the kernel would, the whole chain of links met on the
    way included, never leaving `root` at any step: an absolute target, a '..' above
    `root`, or a chain longer than the kernel follows counts as outside. A component
    that does not exist (yet) is taken lexically. Since no step leaves `root`, the
    verdict still holds once the tree is renamed elsewhere.
    """
    root = os.fspath(root)
    for directory, folders, files in os.walk(root):
        folders.sort()
        here = os.path.relpath(directory, root)
        base = [] if here == "." else here.split(os.sep)
        for name in sorted(folders + files):
            path = os.path.join(directory, name)
            if os.path.islink(path):
                text = os.readlink(path)
                if link_leaves(root, base, text):
                    return "/".join(base + [name]), text
    return None


def find_special_file(root):
    """Return (relative path, kind) of the first device node, FIFO or socket below `root`,
    or None. A snapshot restored as root recreates them; a dataset holds files, folders
    and links, and a device node moved into it would be a door to the raw disk."""
    pending = [""]
    while pending:
        folder = pending.pop()
        with os.scandir(os.path.join(root, folder)) as entries:
            for entry in sorted(entries, key=lambda entry: entry.name):
                relative = f"{folder}/{entry.name}" if folder else entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append(relative)
                elif not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                    mode = entry.stat(follow_symlinks=False).st_mode
                    kind = ("a device node" if stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
                            else "a FIFO" if stat.S_ISFIFO(mode) else "a socket")
                    return relative, kind
    return None


def link_leaves(root, folder, text):
    """Whether the link text `text`, in the folder `folder` (components below `root`),
    leads outside `root` at any step of its resolution."""
    current = list(folder)
    pending = deque(text.split("/"))
    if text.startswith("/"):
        return True
    hops = 1
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return True
            current.pop()
            continue
        candidate = current + [part]
        try:
            info = os.lstat(os.path.join(root, *candidate))
        except (FileNotFoundError, NotADirectoryError):
            current = candidate  # missing: what is created there later cannot be judged now
            continue
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        hops += 1
        target = os.readlink(os.path.join(root, *candidate))
        if hops > MAX_LINKS or target.startswith("/"):
            return True
        pending.extendleft(reversed(target.split("/")))
    return False


def interrupted_swaps(target):
    """Return the `.<name>.syncer-old-<pid>` folders beside `target` whose restore is
    gone: `restore --force` renames the old tree there, then the restored one to
    `target`, then deletes the old one; killed in between, the old tree stays there
    (and `target` may be missing)."""
    from syncer.process import process_exists

    prefix = f".{os.path.basename(os.path.normpath(target))}.syncer-old-"
    parent = os.path.dirname(os.path.normpath(target)) or "."
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    return sorted(os.path.join(parent, name) for name in names
                  if name.startswith(prefix) and name[len(prefix):].isdigit()
                  and not process_exists(int(name[len(prefix):])))


def describe_interrupted_swap(target, old):
    """What a user needs to know about a folder interrupted_swaps() found, and how to finish."""
    if os.path.lexists(target):
        return (f"{old} is the tree a killed `syncer restore --force` replaced at {target}; its restore had put "
                f"the new tree in place: check {target}, then delete it (rm -rf '{old}')")
    return (f"{target} is missing and {old} holds its previous content: a `syncer restore --force` was killed "
            f"between its two renames. To finish, run the restore again (syncer restore ... --to '{target}'), then "
            f"delete '{old}'; to undo, put it back (mv '{old}' '{target}')")
