"""aoai-observatory collector: collects Azure OpenAI telemetry into a rollup store."""
