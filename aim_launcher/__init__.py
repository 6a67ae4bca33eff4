"""``aim_launcher``: the AIM Engine Python API, as its reference imports it.

from aim_launcher import AIMEngine
"""

from aimc.api import AIMConfigGenerator, AIMDockerManager, AIMEngine, AIMRecipeSelector

__all__ = ["AIMConfigGenerator", "AIMDockerManager", "AIMEngine", "AIMRecipeSelector"]
