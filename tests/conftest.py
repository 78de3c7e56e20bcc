"""Hypothesis profiles: the default keeps the suite short; "thorough" searches wider.

Select one with HYPOTHESIS_PROFILE=thorough. A test's own ``@settings`` still
sets its deadline and health checks; the profile sets the number of examples
for tests that do not fix it.
"""

import os

from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=50)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
