"""Blind side-by-side human evaluation in Argilla: push both sides' answers, pull the votes, gate on the win rate."""
