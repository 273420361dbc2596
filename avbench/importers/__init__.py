"""Other projects' configs turned into avbench experiments (`avbench import ...`); no torch."""
