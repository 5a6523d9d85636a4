"""migrator.ops: day-two operations on the unified instance: app backups, pooling, the lifecycle state."""
