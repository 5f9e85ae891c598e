"""Model construction and loading: the tiny Qwen2.5-VL factory and the one loader for any checkpoint."""

from mmupt.deepspeed_env import name_deepspeed_accelerator

name_deepspeed_accelerator()  # every module of this package imports transformers, which imports DeepSpeed
