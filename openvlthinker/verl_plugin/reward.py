"""verl reward manager ``openvlthinker``: our reward suite with token lengths and per-task
envelopes and weights.

verl's score functions never see the response length in tokens; the manager does, so we
score here rather than through ``custom_reward_function``. Every component goes into
``reward_extra_info`` (logged by verl, read by GS-GDPO / GDPO), plus ``acc`` (correctness)
for verl's ``val-core/<data_source>/acc`` metrics. A validation row (``extra_info.set``)
also carries ``task``, ``set`` and ``problem_type`` (strings, which verl's metric code
skips), ``response_length`` and ``benchmark``: the set's benchmark metric
(``openvlthinker.benchmarks``), or correctness when the set names none; the trainer
turns them into ``val/<set>/...``. A failing scorer never stops the run: the response gets
the suite's zero result and ``reward_error`` = 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from openvlthinker.rewards.score import score_reward_item
from openvlthinker.step import score_row, task_reward_item

logger = logging.getLogger(__name__)


def decode_ground_truth(value: Any) -> Any:
    """The exported parquet stores ground truth as JSON text (one column type for boxes,
    numbers and strings); anything else passes through."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _optional_size(value: Any) -> tuple[int, int] | None:
    if value is None or len(value) != 2:
        return None
    return int(value[0]), int(value[1])


@register("openvlthinker")
class OpenVLThinkerRewardManager(RewardManagerBase):
    """Scores one trajectory with :func:`openvlthinker.rewards.score`."""

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ):
        super().__init__(config, tokenizer, compute_score)
        from openvlthinker.verl_plugin.settings import load_registry, load_settings

        self.registry, self.reward_config = load_registry(load_settings(config))

    def score_one(
        self, response: str, response_tokens: int, task: str, ground_truth: Any, extra: dict
    ) -> dict[str, float]:
        """Reward components of one response; ``extra`` is the row's ``extra_info``."""
        task = extra.get("task") or task  # validation rows: data_source is the set's name
        if task not in self.registry:
            raise KeyError(
                f"task {task!r} is not a task of the task file; "
                f"known: {', '.join(sorted(self.registry))}"
            )
        item = task_reward_item(
            self.registry[task],
            response,
            response_tokens,
            decode_ground_truth(ground_truth),
            problem_type=extra.get("problem_type"),
            options=extra.get("options"),
            image_size=extra.get("image_size"),
            model_image_size=extra.get("model_image_size"),
        )
        result = score_reward_item(item, self.reward_config)
        if result.get("error"):
            logger.warning("reward for task %r: %s", task, result["error"])
        out: dict[str, Any] = score_row(result)
        if extra.get("set"):
            out.update(self._validation_extra(response, response_tokens, task, ground_truth, extra))
            if out["benchmark"] is None:
                out["benchmark"] = out["correctness"]
        return out

    def _validation_extra(
        self, response: str, response_tokens: int, task: str, ground_truth: Any, extra: dict
    ) -> dict[str, Any]:
        """Set, task, problem type, length and the set's benchmark metric of a validation row."""
        from types import SimpleNamespace

        from openvlthinker.benchmarks import compute_metric, metric_input

        name = str(extra["set"])
        named = self.registry.validation_sets()
        metric = named[name][1].metric if name in named else None
        value = None
        if metric is not None:
            meta = extra.get("metadata")
            record = SimpleNamespace(
                answer=decode_ground_truth(ground_truth),
                problem_type=extra.get("problem_type") or "",
                options=tuple(extra.get("options") or ()),
                metadata=json.loads(meta) if meta else {},
                image_size=_optional_size(extra.get("image_size")),
            )
            inp = metric_input(
                record,
                response,
                model_image_size=_optional_size(extra.get("model_image_size")),
                answer_tag=self.reward_config.answer_tag,
                think_tag=self.reward_config.think_tag,
                coordinate_frame=self.reward_config.coordinate_frame,
            )
            value = compute_metric(metric, inp).value
        return {
            "set": name,
            "task": task,
            "problem_type": str(extra.get("problem_type") or ""),
            "response_length": float(response_tokens),
            "benchmark": value,
        }

    async def run_single(self, data: DataProto) -> dict:
        """verl's per-trajectory call: returns reward_score and reward_extra_info."""
        loop = asyncio.get_running_loop()
        item = data[-1:][0]
        task = str(item.non_tensor_batch.get("data_source", "?"))
        # A malformed row (no ground truth, undecodable ids) scores 0 like a failing scorer.
        try:
            response_ids = item.batch["responses"]
            width = response_ids.shape[-1]
            valid = int(item.batch["attention_mask"][-width:].sum())
            ids = response_ids[:valid]
            text = await loop.run_in_executor(
                None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True)
            )
            ground_truth = item.non_tensor_batch["reward_model"]["ground_truth"]
            extra = dict(item.non_tensor_batch.get("extra_info", None) or {})
            info = await loop.run_in_executor(
                None, lambda: self.score_one(text, valid, task, ground_truth, extra)
            )
        except Exception:
            logger.exception("reward for task %r failed; scoring the response 0", task)
            info: dict[str, Any] = score_row({"error": "the row could not be scored"})
            info.update(self._failed_validation_extra(item))
        return {"reward_score": info["overall"], "reward_extra_info": info}

    def _failed_validation_extra(self, item: Any) -> dict[str, Any]:
        """The validation keys of a row that could not be scored (benchmark 0)."""
        try:
            extra = dict(item.non_tensor_batch.get("extra_info", None) or {})
        except Exception:
            return {}
        if not extra.get("set"):
            return {}
        return {
            "set": str(extra["set"]),
            "task": str(extra.get("task") or ""),
            "problem_type": str(extra.get("problem_type") or ""),
            "response_length": 0.0,
            "benchmark": 0.0,
        }
