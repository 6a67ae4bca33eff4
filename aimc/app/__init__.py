"""The use cases shared by the command line (:mod:`aimc.cli`) and the Python API
(:mod:`aimc.api`): each one module, written once, below both.

A use case takes what its callers resolved (a plan, a request, the settings) and does the
work in the order the product promises, raising :class:`~aimc.errors.AimcError` for every
refusal; how the result is shown (text, the JSON success response, the API's response
dict) stays with the caller. :mod:`aimc.app.launch`: compile a plan into a run folder,
ready the model cache, start the server and wait until it serves.
"""
