"""Model construction and loading: the tiny Qwen2.5-VL factory and the one loader for any checkpoint."""
