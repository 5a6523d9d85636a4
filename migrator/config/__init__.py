"""migrator.config: what the operator wrote: consolidation.toml, env files, options."""
