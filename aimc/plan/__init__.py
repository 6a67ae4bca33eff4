"""Planning: the request and the combinations a recipe allows, the precedence layers and
their one merge, the memory estimate, measured figures, the selection policy
(:mod:`aimc.plan.policy`) and the frozen :class:`~aimc.plan.model.Plan` it all builds.
Pure: no file is written and no process started here.
"""
