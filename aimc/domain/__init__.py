"""The recipe format: the typed Recipe and Hardware with their accessors, the JSON Schemas
(and their compiled checks), and engine args and secret names judged against the
backends' vocabularies.
"""
