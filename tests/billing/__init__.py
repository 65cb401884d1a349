"""Tests of the bill: allocation of billed cost to teams, and reconciliation with the estimate."""
