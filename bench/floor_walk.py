"""The least Python can do for a cold verify of one tree: bench/scale.py --floor.

Walks the tree at ROOT through folder descriptors and, for every file, lstat, open by
name, read, MD5 and close: what `md5sum` does, with nothing syncer adds (no excludes,
no checks of names, no progress, no walker protocol). INDEX says what is kept of it:

- none: nothing;
- folder: one SQLite row a folder, its files' (name, size, mtime, ctime, device,
  inode, digest) packed with marshal (an index syncer does not have: no row a file);
- file: one row a file in a narrow table keyed by (folder, name), without rowid.

DATABASE is this process's own SQLite file (no other writer, no lock to wait for).
The figures bound from below what any index kept by Python can cost here.
"""

import hashlib
import marshal
import os
import sqlite3
import sys

FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NOATIME", 0)
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TABLES = {
    "folder": "CREATE TABLE folders (folder TEXT PRIMARY KEY, files BLOB) WITHOUT ROWID",
    "file": "CREATE TABLE files (folder TEXT, name TEXT, size INT, mtime_ns INT, ctime_ns INT, dev INT, ino INT, "
            "md5 BLOB, PRIMARY KEY (folder, name)) WITHOUT ROWID",
}


def walk(folder_fd, folder, keep):
    rows, folders = [], []
    with os.scandir(folder_fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
                continue
            info = entry.stat(follow_symlinks=False)
            fd = os.open(entry.name, FILE_FLAGS, dir_fd=folder_fd)
            try:
                digest = hashlib.md5(os.read(fd, info.st_size + 1)).digest()
            finally:
                os.close(fd)
            rows.append((entry.name, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_dev, info.st_ino,
                         digest))
    if rows:
        keep(folder, rows)
    for name in sorted(folders):
        fd = os.open(name, FOLDER_FLAGS, dir_fd=folder_fd)
        try:
            walk(fd, f"{folder}/{name}" if folder else name, keep)
        finally:
            os.close(fd)


def main(index, root, database):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(database + suffix):
            os.unlink(database + suffix)
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    if index in TABLES:
        db.execute(TABLES[index])

    def keep_folder(folder, rows):
        db.execute("INSERT INTO folders VALUES (?, ?)", (folder, marshal.dumps(rows)))

    def keep_files(folder, rows):
        db.execute("BEGIN")
        db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(folder, *row) for row in rows])
        db.execute("COMMIT")

    keep = {"none": lambda folder, rows: None, "folder": keep_folder, "file": keep_files}[index]
    root_fd = os.open(root, FOLDER_FLAGS & ~os.O_NOFOLLOW)
    try:
        walk(root_fd, "", keep)
    finally:
        os.close(root_fd)
        db.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
