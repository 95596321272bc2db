"""One module per `drill` subcommand; each defines a Click command called `command`."""
