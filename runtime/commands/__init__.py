"""One module per `edgewatch` subcommand, each with `add_arguments(parser)` and `run(args) -> int`."""
