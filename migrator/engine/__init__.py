"""migrator.engine: moving and proving data: connections, loaders, readers, dumps, the journal, the catalog."""
