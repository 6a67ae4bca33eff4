"""The Hugging Face model cache: checkpoint sizes and snapshots, the guarded download
(resumed weight files, the hub's failures as aimc errors), progress, the scan of what is
cached and its safe removal. Below the plan: compile reads real checkpoint sizes from it.
"""
