"""openvlthinker on verl 0.9.1: estimators, trainer, band loss, reward manager, data export.

Importing this package registers our estimators in verl's advantage registry and our reward
manager (``openvlthinker``) in verl's reward-manager registry. Name it in
``VERL_USE_EXTERNAL_MODULES=openvlthinker.verl_plugin`` and verl imports it in every Ray
process (``openvlthinker-verl`` sets that for you).
"""

from openvlthinker.verl_plugin.estimators import VERL_NAMES, register_verl_estimators
from openvlthinker.verl_plugin.reward import OpenVLThinkerRewardManager
from openvlthinker.verl_plugin.vision import freeze_requested, install_vision_freeze

register_verl_estimators()
if freeze_requested():  # set by openvlthinker-verl from actor_rollout_ref.actor.freeze_vision_tower
    install_vision_freeze()

__all__ = ["VERL_NAMES", "OpenVLThinkerRewardManager", "register_verl_estimators"]
