"""The production KQL queries, one per .kql file, shipped as package data."""
