"""Everything under results/: where files go, run records, the leaderboard. No torch here."""
