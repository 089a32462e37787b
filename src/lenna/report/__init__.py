"""Figures and pages of the report; never an input of a rule that computes a result."""
