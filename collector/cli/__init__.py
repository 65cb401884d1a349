"""The `aoai-obs` command, one module per command group."""
