"""The runs room: run folders, their status, and the table of runs."""
