"""Checking recipe repositories: the catalog (recipes and hardware profiles found,
loaded and linted on first use), the target profile for this machine, the semantic lint
rules, and ``aim-engine validate``'s checker with its cache of verdicts.
"""
