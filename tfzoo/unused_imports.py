"""A shorter start for the processes that only load and run SavedModels: the export's validating child,
`tfzoo validate` and `tfzoo serve`.

TensorFlow imports Keras at start-up, and Keras then imports scikit-learn (for its scikit-learn wrappers, SciPy
coming with it) and matplotlib (for its plotting helpers) whenever they are installed, which tfzoo's training
needs them to be. These processes use none of the three, and Keras imports each only if it can, so they are marked
absent before TensorFlow loads: a third of such a process's imports (a validating child's imports took 3.7-4.3 s
of CPU with them, 2.7-2.8 s without, on a 2-core machine).
"""
from __future__ import annotations

import sys

UNUSED = ("sklearn", "scipy", "matplotlib")


def skip_unused_imports() -> None:
    """Make UNUSED unimportable in this process (None in sys.modules: importing one raises ImportError). Call it
    before TensorFlow is imported, and only in a process that trains nothing and reads no dataset."""
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # a module already imported stays
