"""One module per `lakeops` command group; each exposes `register(subparsers)`."""
