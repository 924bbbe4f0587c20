"""Through-focus stacks: measuring them, checking a model on them, and their focus curves.

- :mod:`~focusnet.stacks.measure`: every plane of a stack measured and its
  best plane picked (:func:`predict_stack`);
- :mod:`~focusnet.stacks.batch`: many stacks in one run, with a journal
  (``focusnet stack``);
- :mod:`~focusnet.stacks.check`: how well a model follows the distance from a
  real stack's sharpest plane (``focusnet evaluate-stack``);
- :mod:`~focusnet.stacks.plot`: the focus curve of a stack.

Stacks are read by :func:`focusnet.images.read_stack`.
"""

from .check import StackCheck, check_stack, normalized_variance
from .measure import PlaneResult, StackResult, best_plane, predict_stack, refine_best_plane, write_planes
from .plot import save_focus_curve

__all__ = ["PlaneResult", "StackCheck", "StackResult", "best_plane", "check_stack", "normalized_variance",
           "predict_stack", "refine_best_plane", "save_focus_curve", "write_planes"]
