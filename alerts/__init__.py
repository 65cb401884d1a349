"""aoai-observatory alert rules as code: YAML -> Azure Monitor metric alerts."""
