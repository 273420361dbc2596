"""Converters from the seed projects' own config files to avbench experiments (no torch)."""
