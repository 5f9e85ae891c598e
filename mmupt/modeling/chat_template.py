"""The Qwen2-VL chat format, written as our own Jinja template.

It renders exactly the token layout Qwen2.5-VL checkpoints are trained on, so the tiny model
and a real checkpoint see prompts built the same way:

    <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>text<|im_end|>\\n
    <|im_start|>assistant\\n
"""

DEFAULT_SYSTEM = "You are a helpful assistant."

CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
