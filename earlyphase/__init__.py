"""earlyphase: the phase diagram of early neural-network training.

Subpackages:
  core       definitions shared by theory and experiment (records, critical values, phases)
  theory     solvable models: uv model, deep linear networks, NTK-scale dynamics
  empirical  real networks trained with SGD while tracking sharpness and loss
  compare    theory overlaid on measured phase diagrams
"""

__version__ = "0.1.0"
