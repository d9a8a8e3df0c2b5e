"""Verdict -> HA: the decoded record, the rule that decides who is told, and carrying it out."""
