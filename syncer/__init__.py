"""syncer: keep a small server's datasets redundant and provably restorable."""

__version__ = "0.1.0"
