"""Evaluation: benchmark metrics (:mod:`~openvlthinker.benchmarks`) and
``openvlthinker eval`` (:mod:`~openvlthinker.evaluation.runner`), which scores saved
checkpoints on the task file's validation sets and writes the paper's tables."""
