"""Statistics of the studies' tables: intervals, paired tests, the leaderboard columns."""
