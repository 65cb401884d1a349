"""The rollup store: the database, its aggregate reads and its migrations."""
