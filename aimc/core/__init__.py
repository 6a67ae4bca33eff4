"""The core: what every layer stands on. Exit codes and errors, file:line:col diagnostics,
the packaged data, the one masking rule for secrets, bounded YAML with positions, every
environment variable read once, logging, the one writer of output folders and what it
owns, run records. Imports nothing else of aimc.
"""
