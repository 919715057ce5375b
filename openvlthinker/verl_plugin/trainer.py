"""verl's V1 sync trainer with our advantage step and band loss, and the task runner for it.

``G2RPOTrainer._compute_advantage`` replaces verl's step 7: it fetches the task key
(``data_source``), the prompt-group id (``uid``), the reward components (the reward
manager's ``reward_extra_info``) and the old-policy entropy from TransferQueue, calls
:func:`openvlthinker.step.advantage_step` (the single-process engine's step too), and writes
advantages, returns and the band weights back under the same keys; the training metrics are
``openvlthinker.step.training_metrics``, the engine's set. Every name of
``openvlthinker.advantage`` (``gs_grpo``, ``gs_gdpo``, and ``grpo``, ``gdpo``, ``rloo``,
``reinforce_plus_plus``, whose defaults give verl's numbers) runs our code here; names that
are verl's alone (``gae``, ``opo``, ``reinforce_plus_plus_baseline``, ...) go through verl's
own step unchanged.

We do not register a trainer mode (verl treats any mode other than ``sync`` as async);
``G2RPOTaskRunner`` builds this trainer directly and ``run_ppo`` drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import ray
import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from openvlthinker.advantage import ESTIMATORS
from openvlthinker.step import (
    StepInputs,
    StepOutputs,
    StepTasks,
    advantage_step,
    score_tensors,
    training_metrics,
)
from openvlthinker.verl_plugin.config import estimator_call_options
from openvlthinker.verl_plugin.loss import BAND_WEIGHT_KEY, band_ppo_loss
from openvlthinker.verl_plugin.settings import PluginSettings, load_registry, load_settings

logger = logging.getLogger(__name__)

#: Per-trajectory TransferQueue fields the advantage step reads.
ADVANTAGE_FIELDS = [
    "uid",
    "response_mask",
    "rm_scores",
    "data_source",
    "extra_info",
    "extra_fields",
    "entropy",
    "rollout_log_probs",
    "old_log_probs",
    "ref_log_prob",
]


def column(td: TensorDict, key: str) -> list:
    """A non-tensor TransferQueue column (NonTensorStack, LinkedList, ndarray) as a list."""
    value = td.get(key)
    return value.tolist() if hasattr(value, "tolist") else list(value)


def extra_score_rows(extra_fields: list[Any], names: Sequence[str]) -> list[dict[str, Any]]:
    """Each trajectory's ``reward_extra_info`` (our reward manager's score row, see
    ``step.scores``); rows without the components ``names`` next to rows with them are a
    misconfigured reward manager. All empty for a reward manager other than ours."""
    infos = [e.get("reward_extra_info", {}) if isinstance(e, dict) else {} for e in extra_fields]
    has = [all(n in info for n in names) for info in infos]
    if any(has) and not all(has):
        row = has.index(False)
        raise KeyError(
            f"row {row}: reward_extra_info has {sorted(infos[row])}, not all of {list(names)}; "
            "set reward.reward_manager.name=openvlthinker"
        )
    return infos


class G2RPOTrainer(PPOTrainerSync):
    """V1 sync trainer whose advantage step is ours and whose actor loss carries the band."""

    def __init__(self, config: DictConfig):
        super().__init__(config)
        self._init_openvlthinker()

    def _init_openvlthinker(self) -> None:
        self.settings: PluginSettings = load_settings(self.config)
        self.registry, _ = load_registry(self.settings)
        self.step_tasks = StepTasks.from_registry(self.registry, self.settings.components)
        ours = self.config.algorithm.adv_estimator in ESTIMATORS
        self.estimator_options = estimator_call_options(self.config, self.settings) if ours else {}

    def _setup(self) -> None:
        super()._setup()
        if self.settings.entropy_band.enable:
            from verl.utils.config import omega_conf_to_dataclass

            actor_config = omega_conf_to_dataclass(self.config.actor_rollout_ref.actor)
            estimator = self.settings.entropy_band.estimator
            self.actor_rollout_wg.set_loss_fn(
                partial(band_ppo_loss, config=actor_config, estimator=estimator)
            )
            logger.info("actor loss: ppo_loss + per-task entropy band (%s entropy)", estimator)

    def _val_metrics_update(
        self,
        data_sources,
        sample_uids,
        reward_extra_infos_dict,
        sample_turns,
        expected_acc_counts=None,
    ) -> dict[str, float]:
        """verl's validation metrics (per ``data_source`` = set) plus ours: ``val/<set>/...``,
        ``val/<task>/...``, ``val/macro/...``, ``val/score`` (see ``validation.py``)."""
        from openvlthinker.verl_plugin.validation import plugin_validation_metrics

        metrics = super()._val_metrics_update(
            data_sources,
            sample_uids,
            reward_extra_infos_dict,
            sample_turns,
            expected_acc_counts=expected_acc_counts,
        )
        max_len = self.config.actor_rollout_ref.rollout.get("response_length", None)
        metrics.update(
            plugin_validation_metrics(self.registry, data_sources, reward_extra_infos_dict, max_len)
        )
        return metrics

    def _advantage_key(self, data_source: list[str], extra_info: list[Any]) -> list[Any]:
        field = self.registry.advantage_key
        if field == "task":
            return data_source
        keys = []
        for row, info in enumerate(extra_info):
            if not isinstance(info, dict) or field not in info:
                raise KeyError(
                    f"row {row}: extra_info has no {field!r}, which the task file's "
                    "advantage_key names; re-export the data with openvlthinker-verl"
                )
            keys.append(info[field])
        return keys

    def _compute_advantage(self, batch: Any, metrics: dict) -> Any:
        """verl's step 7 with our estimator: read, adjust rewards as verl does (KL in reward,
        rollout correction), run :func:`advantage_step`, write back by key."""
        name = self.config.algorithm.adv_estimator
        if name not in ESTIMATORS:
            return super()._compute_advantage(batch, metrics)
        proto, columns, response_mask = self._read(batch)
        proto, written = self._adjust_rewards(proto, metrics)
        inputs = self._step_inputs(proto, columns, batch.tags)
        out = advantage_step(
            inputs,
            name,
            self.step_tasks,
            components=self.settings.components,
            options=self.estimator_options,
        )
        metrics.update(self._metrics(inputs, out))

        mask = proto.batch["response_mask"]
        dtype = proto.batch["token_level_rewards"].dtype
        proto.batch["advantages"] = out.advantages.to(dtype).unsqueeze(-1) * mask
        proto.batch["returns"] = proto.batch["advantages"]
        written = ["advantages", "returns", *written]
        if self.settings.entropy_band.enable:
            proto.batch[BAND_WEIGHT_KEY] = out.band_weight.to(dtype).unsqueeze(-1) * mask
            written.append(BAND_WEIGHT_KEY)
        return self._write(batch, proto, written, response_mask)

    def _read(self, batch: Any) -> tuple[Any, dict[str, list], torch.Tensor]:
        """Padded tensors as a DataProto, the non-tensor columns, the nested response mask."""
        from verl.protocol import DataProto

        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=ADVANTAGE_FIELDS
        )
        columns = {k: column(data, k) for k in ("uid", "data_source", "extra_info", "extra_fields")}
        for key in columns:
            data.pop(key)
        response_mask = data["response_mask"]
        if not response_mask.is_nested:
            response_mask = torch.nested.as_nested_tensor(list(response_mask), layout=torch.jagged)
        proto = DataProto(batch=data.to_padded_tensor())
        proto.batch["token_level_scores"] = proto.batch["rm_scores"]
        proto.non_tensor_batch["uid"] = np.array(columns["uid"], dtype=object)
        return proto, columns, response_mask

    def _adjust_rewards(self, proto: Any, metrics: dict) -> tuple[Any, list[str]]:
        """KL-in-reward and rollout correction exactly as verl's own step applies them;
        returns the extra fields to write back."""
        from verl.trainer.ppo.ray_trainer import apply_kl_penalty
        from verl.trainer.ppo.rollout_corr_helper import (
            compute_rollout_correction_and_add_to_batch,
        )

        written = []
        if self.config.algorithm.use_kl_in_reward:
            proto, kl_metrics = apply_kl_penalty(
                proto, kl_ctrl=self.kl_ctrl_in_reward, kl_penalty=self.config.algorithm.kl_penalty
            )
            metrics.update(kl_metrics)
            written.append("token_level_rewards")
        else:
            proto.batch["token_level_rewards"] = proto.batch["token_level_scores"]
        corr = self.config.algorithm.get("rollout_correction", None)
        bypass = corr and corr.get("bypass_mode", False)
        if corr is not None and "rollout_log_probs" in proto.batch and not bypass:
            proto, is_metrics = compute_rollout_correction_and_add_to_batch(proto, corr)
            metrics.update(is_metrics)
            written.append("response_mask")
            if "rollout_is_weights" in proto.batch:
                written.append("rollout_is_weights")
        return proto, written

    def _step_inputs(self, proto: Any, columns: dict[str, list], tags: list[dict]) -> StepInputs:
        data_source = [str(s) for s in columns["data_source"]]
        mask = proto.batch["response_mask"]
        rows = extra_score_rows(columns["extra_fields"], self.settings.components)
        scores = score_tensors(rows)
        # the scored reward, before any KL in the reward (train/<task>/reward in both engines)
        scores["overall"] = (proto.batch["token_level_scores"] * mask).sum(dim=-1).double()
        return StepInputs(
            group=columns["uid"],
            # verl's padding rows copy the first row's non-tensor fields: their task is a real one
            task_index=self.registry.indices(data_source, where="data_source"),
            advantage_key=self._advantage_key(data_source, columns["extra_info"]),
            rewards=(proto.batch["token_level_rewards"] * mask).sum(dim=-1).double(),
            scores=scores,
            response_mask=mask,
            entropy=self._token_entropy(proto),
            padding=torch.tensor([bool(t.get("is_padding", False)) for t in tags]),
        )

    def _metrics(self, inputs: StepInputs, out: StepOutputs) -> dict[str, float]:
        """The training metrics of the real rows; ``actor/entropy_band_loss`` is the band
        loss on the batch's old-policy entropy, which the band weights were judged on."""
        real = torch.nonzero(~inputs.padding).flatten()
        metrics = training_metrics(
            self.step_tasks.names,
            inputs.task_index[real],
            {k: v[real] for k, v in inputs.scores.items()},
            inputs.response_mask[real],
            out.advantages[real],
            None if inputs.entropy is None else inputs.entropy[real],
        )
        if self.settings.entropy_band.enable and out.band is not None:
            metrics["actor/entropy_band_loss"] = out.band.penalty
        return metrics

    def _token_entropy(self, proto: Any) -> torch.Tensor | None:
        """(B, T) old-policy token entropy of ``openvlthinker.entropy_band.estimator`` (band
        side and ``train/<task>/entropy``); None when verl did not compute it and the band
        is off."""
        sampled = self.settings.entropy_band.estimator == "sampled"
        # sampled (method.md section 3): -log pi of the sampled token, from verl's
        # old_log_probs (the rollout's log-probs in rollout-correction bypass mode)
        key = "old_log_probs" if sampled else "entropy"
        if key in proto.batch:
            return -proto.batch[key] if sampled else proto.batch[key]
        if not self.settings.entropy_band.enable:
            return None
        if sampled:
            raise KeyError(
                "openvlthinker.entropy_band.enable needs the old-policy log-probs (old_log_probs), "
                "which this batch lacks"
            )
        raise KeyError(
            "openvlthinker.entropy_band.estimator=full needs the old-policy entropy, which "
            "verl skips in rollout-correction bypass mode; set openvlthinker."
            "entropy_band.estimator=sampled, algorithm.rollout_correction.bypass_mode=false "
            "or openvlthinker.entropy_band.enable=false"
        )

    @staticmethod
    def _write(batch: Any, proto: Any, names: list[str], response_mask: torch.Tensor) -> Any:
        from verl.workers.utils.padding import response_to_nested

        output = TensorDict(
            {k: response_to_nested(proto.batch[k], response_mask) for k in names},
            batch_size=len(batch),
        )
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=output)


class G2RPOTaskRunnerBase:
    """verl's ``TaskRunnerV1`` with :class:`G2RPOTrainer` in place of the registered mode;
    a subclass may set ``trainer_cls`` to a subclass of it (wrap with ``ray.remote``)."""

    trainer_cls: type[G2RPOTrainer] = G2RPOTrainer

    def run(self, config: DictConfig) -> None:
        """Initialise TransferQueue, build the trainer and the agent loop, train."""
        from verl.trainer.ppo.v1 import AgentLoopManagerTQ
        from verl.utils.import_utils import load_class_from_fqn
        from verl.utils.logging_utils import configure_verl_logging

        configure_verl_logging()
        config.transfer_queue.enable = True
        OmegaConf.resolve(config)
        tq.init(config.transfer_queue)
        trainer = None
        succeeded = False
        try:
            trainer = self.trainer_cls(config=config)
            trainer.init()
            fqn = config.actor_rollout_ref.rollout.get("agent", {}).get("agent_loop_manager_class")
            manager_cls = (
                load_class_from_fqn(fqn, "AgentLoopManager") if fqn else AgentLoopManagerTQ
            )
            manager = manager_cls.create(
                config=config,
                llm_client=trainer.get_llm_client(),
                teacher_client=trainer.get_teacher_client(),
                reward_loop_worker_handles=trainer.get_reward_handles(),
            )
            trainer.fit(manager)
            succeeded = True
        finally:
            try:
                tracking = getattr(trainer, "logger", None)
                if tracking is not None:
                    tracking.finish(exit_code=0 if succeeded else 1)
            finally:
                tq.close()


#: The Ray actor ``run_ppo`` starts: one CPU, like verl's own task runner.
G2RPOTaskRunner = ray.remote(num_cpus=1)(G2RPOTaskRunnerBase)
