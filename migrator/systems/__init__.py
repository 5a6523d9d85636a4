"""migrator.systems: outside systems: the docker engine (the only importer of docker) and pgBackRest."""
