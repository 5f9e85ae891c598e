"""MM-UPT training: GRPO whose reward is the model's own majority vote, as a Ray + DeepSpeed job.

Each step: draw ``data.prompts_per_step`` prompts (a seeded order per epoch) -> every worker samples
``rollout.n`` responses for its share -> the responses of each prompt vote on a pseudo-label
(``stages/vote.py``) and agreeing responses get reward 1 -> group-relative advantages
(``mmupt/rl``) -> ``algorithm.ppo_epochs`` passes of clipped-surrogate updates, one optimizer step per
``update.prompts_per_update`` prompts, on the DeepSpeed engine.

How it departs from standard GRPO (DeepSeekMath, arXiv:2402.03300) and from the MM-UPT reference code:
1. The reward needs no label: majority vote over *equivalence classes* of extracted answers
   (``0.5`` = ``\\frac{1}{2}``), unparsable responses do not vote, ties and weak majorities give no
   pseudo-label. ``reward.kind: oracle`` swaps in the hidden label (supervised GRPO), same job.
2. Groups without a pseudo-label are *excluded from the loss* (not trained towards reward 0) and
   counted (``vote/skipped/<reason>``). A step in which no worker has a trainable group makes no
   optimizer step and says so; a job in which every step was skipped ends with an error.
3. The loss over an update batch is exact whatever the micro-batching and worker count: each
   micro-batch is weighted by its share of the global tokens (or sequences) (see ``update.py``).
4. The KL term to the frozen reference is a loss term (``low_var_kl``, 0.01), not a reward penalty.
5. Every random draw is seeded from ``(seed, step, rank)``: a run killed at any step and resumed
   from its last checkpoint ends with the same weights as an uninterrupted one (CPU, fp32).

Launch:
    mmupt train --samples SAMPLES --model MODEL_DIR --config configs/train_tiny.yaml --out OUT [--resume]
    run_train([samples_dir], model_dir, out_dir, load_config(TrainConfig, "configs/train_tiny.yaml"))

Output: ``OUT`` is one artifact (kind ``train``): table ``rollouts`` (every response of every step,
schema ROLLOUTS), ``model/`` (the trained policy, HF safetensors + processor files), ``metrics.jsonl``
(one line per step), ``checkpoints/step-NNNNNN/`` (DeepSpeed state of the newest steps, for
``--resume``) and ``steps/`` (the per-step rollout parts the table was built from). Until the job
finishes, ``OUT`` has no manifest, so no later stage can mistake it for a finished one.

Logged metrics (``metrics.jsonl``, ``on_metrics``, MLflow), one value per step: each name and its
definition is in ``schemas/metrics.py`` (reward, vote, label accuracy, advantage, actor, response,
step and ``timing_s/<phase>`` for rollout, vote, adv, logprob, update, checkpoint and step).
"""

from stages.train.job import TrainJobError, TrainResult, run_train

__all__ = ["TrainJobError", "TrainResult", "run_train"]
