"""The embedded workspace: a local, Log-Analytics-shaped database answering the same KQL as Azure."""
