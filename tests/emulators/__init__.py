"""HTTPS emulators of the Azure APIs the collector talks to, for tests: real SDK clients, no patching."""
