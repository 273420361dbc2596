"""The experiments and sweep files that ship with avbench (package data, found from any folder)."""
