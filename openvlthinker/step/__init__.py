"""What one training step does in both engines, engine-free: reward items, scores as
tensors, the advantage step, the entropy band's side per task, the training metrics.

The single-process engine (``openvlthinker.engine``) and the verl plugin
(``openvlthinker.verl_plugin``) call these; neither keeps a copy.
"""

from openvlthinker.step.advantage import StepInputs, StepOutputs, StepTasks, advantage_step
from openvlthinker.step.bands import BandSide, TaskBands, band_side, band_weights
from openvlthinker.step.items import record_reward_items, task_reward_item
from openvlthinker.step.metrics import training_metrics
from openvlthinker.step.scores import SCORE_KEYS, estimator_components, score_row, score_tensors

__all__ = [
    "SCORE_KEYS",
    "BandSide",
    "StepInputs",
    "StepOutputs",
    "StepTasks",
    "TaskBands",
    "advantage_step",
    "band_side",
    "band_weights",
    "estimator_components",
    "record_reward_items",
    "score_row",
    "score_tensors",
    "task_reward_item",
    "training_metrics",
]
