"""The names of results/README.md (the index of the result pages): the bound on one step's update,
editor.MAX_UPDATE, against the largest per-step ratio of the stored runs (update_bound.stored)."""

import re

from pagekit import HERE
from update_bound import stored


def max_update():
    """editor.MAX_UPDATE as editor.py writes it."""
    return float(
        re.search(r"^MAX_UPDATE = (\S+)", (HERE.parent / "editor.py").read_text(), re.M)[1]
    )


def context():
    found = stored()
    (largest, largest_method, largest_model), largest_run = found[-1]
    bound = max_update()
    return dict(
        found=found,
        largest=largest,
        largest_method=largest_method,
        largest_model=largest_model,
        largest_run=largest_run,
        MAX_UPDATE=bound,
        margin=bound / largest,
    )
