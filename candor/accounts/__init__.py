"""Accounts and access: users, API keys, rate and spend limits, usage metering, privacy."""
