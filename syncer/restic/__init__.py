"""restic: argv builders (pure functions), the version table, and the one place that runs restic."""
