"""Synthetic banks shaped like the bundled one, for benches: any size, same seed → same text.

Each question has a metadata line (the separators vary as in the real bank), three tags from a
pool of fifty, and an answer of 1–4 KB (UTF-8) mixing Chinese and English paragraphs, lists,
tables, fenced code, inline and display math, and a `<mark>` summary: mostly closed properly,
sometimes closed by a second `<mark>` (the usual mistake), sometimes a block around a list.
"""

from __future__ import annotations

import random
from pathlib import Path

from bot.core.bank import Bank, parse_text

TAG_POOL = (
    "Transformer", "Attention", "RL", "PPO", "GRPO", "DPO", "RLHF", "SFT", "LoRA", "PEFT",
    "RAG", "Agent", "Tokenizer", "BPE", "MoE", "KV-Cache", "FlashAttention", "DeepSpeed", "ZeRO",
    "量化", "蒸馏", "剪枝", "损失函数", "交叉熵", "KL散度", "归一化", "LayerNorm", "RMSNorm", "RoPE",
    "位置编码", "Embedding", "推理加速", "解码策略", "Beam Search", "Top-p", "温度", "幻觉", "评测",
    "MMLU", "数据清洗", "预训练", "Scaling Law", "混合精度", "梯度消失", "DeepSeek", "Qwen", "GPT",
    "BERT", "多模态", "CoT",
)  # fmt: skip
COMPANIES = ("美团", "阿里", "腾讯", "字节跳动", "快手", "百度", "京东", "None")
ROUNDS = ("算法工程师 一面", "大模型算法工程师 二面", "暑期实习一面", "None")
WORDS = (
    "模型", "训练", "梯度", "注意力", "参数", "推理", "数据", "奖励", "策略", "分布", "token",
    "batch", "layer", "loss", "优化器", "显存", "序列", "采样", "对齐", "泛化", "the", "model",
    "uses", "a", "large", "sparse", "update", "with", "each", "step", "scaling", "context",
)  # fmt: skip
MIN_ANSWER_BYTES, MAX_ANSWER_BYTES = 1024, 4096
_MARK_TAGS_BYTES = len("<mark>\n\n</mark>")  # what the parser drops from an answer, at most


def synthetic_bank_markdown(n_questions: int, seed: int) -> str:
    """One markdown file with `n_questions` questions under chapters and sections."""
    rng = random.Random(seed)
    parts: list[str] = []
    for index in range(n_questions):
        if index % 50 == 0:
            parts.append(f"# 第 {index // 50 + 1} 章 {_words(rng, 3)}\n> {_sentence(rng)}\n")
        if index % 10 == 0:
            parts.append(f"## {index // 10 % 5 + 1}. {_words(rng, 2)}\n")
        parts.append(_question(rng, index))
    return "\n".join(parts)


def synthetic_bank(n_questions: int, seed: int) -> Bank:
    questions, _ = parse_text(synthetic_bank_markdown(n_questions, seed), Path("synthetic.md"))
    return Bank(questions)


def _question(rng: random.Random, index: int) -> str:
    tags = ", ".join(rng.sample(TAG_POOL, 3))
    separator = rng.choice(("|", "｜", " ｜ "))
    quote = "> " if rng.random() < 0.9 else ""
    metadata = (
        f"{quote}**Company**: {rng.choice(COMPANIES)} {separator} **Round**: {rng.choice(ROUNDS)} "
        f"{separator} **Date**: 2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
        f"{separator} **Tags**: [{tags}]"
    )
    title = f"### Q. {_words(rng, rng.randint(4, 10))} ({index})？"
    return f"{title}\n{metadata}\n\n{_answer(rng)}\n"


def _answer(rng: random.Random) -> str:
    """Blocks up to a random target size; the last block may pass the target to reach the minimum
    (blocks are far smaller than the maximum minus the minimum, so sizes stay within the bounds)."""
    summary = _summary(rng)
    blocks: list[str] = []
    size = len(summary.encode())
    target = rng.randint(MIN_ANSWER_BYTES, MAX_ANSWER_BYTES)
    while True:
        block = rng.choice(_BLOCKS)(rng)
        block_size = len(block.encode()) + 2  # with the blank line before the next block
        if size + block_size > target and size - _MARK_TAGS_BYTES >= MIN_ANSWER_BYTES:
            break
        blocks.append(block)
        size += block_size
    return "\n\n".join([*blocks, summary])


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


def _sentence(rng: random.Random) -> str:
    words = _words(rng, rng.randint(8, 20))
    decorated = rng.choice((f"**{words}**", f"`{rng.choice(WORDS)}`", "$O(n^2 \\cdot d)$", ""))
    return f"{words} {decorated} {_words(rng, rng.randint(4, 12))}。"


def _paragraph(rng: random.Random) -> str:
    return "".join(_sentence(rng) for _ in range(rng.randint(2, 4)))


def _bullets(rng: random.Random) -> str:
    lines = []
    for number in range(rng.randint(3, 6)):
        lines.append(f"- **{_words(rng, 2)}**：{_sentence(rng)}  ")
        if number % 2:
            lines.append(f"  - {_sentence(rng)}")
    return "\n".join(lines)


def _numbered(rng: random.Random) -> str:
    return "\n".join(f"{n}. {_sentence(rng)}" for n in range(1, rng.randint(3, 6)))


def _table(rng: random.Random) -> str:
    rows = ["| 方法 | 优点 | 缺点 |", "|------|------|------|"]
    rows += [f"| {_words(rng, 2)} | {_words(rng, 4)} | {_words(rng, 4)} |" for _ in range(rng.randint(3, 6))]
    return "\n".join(rows)


def _code(rng: random.Random) -> str:
    body = "\n".join(
        f"    {name} = torch.{rng.choice(('matmul', 'softmax', 'exp'))}({name}, dim=-1)  # {_words(rng, 3)}"
        for name in rng.sample(("q", "k", "v", "scores", "attn", "out"), 3)
    )
    return f"```python\ndef forward(q, k, v):\n{body}\n    return out\n```"


def _math(rng: random.Random) -> str:
    return rng.choice(
        (
            "$$\n\\mathcal{L} = -\\sum_{t=1}^{T} \\log p_\\theta(x_t \\mid x_{<t})\n$$",
            "$$\n\\text{Attention}(Q,K,V) = \\text{softmax}\\left(\\frac{QK^T}{\\sqrt{d_k}}\\right)V\n$$",
            "\\[\nr_t(\\theta) = \\frac{\\pi_\\theta(a_t|s_t)}{\\pi_{\\theta_{old}}(a_t|s_t)}\n\\]",
        )
    )


_BLOCKS = (_paragraph, _paragraph, _bullets, _numbered, _table, _code, _math)


def _summary(rng: random.Random) -> str:
    text = f"**总结**：{_sentence(rng)}"
    roll = rng.random()
    if roll < 0.6:
        return f"<mark>{text}</mark>"
    if roll < 0.85:
        return f"<mark>{text}<mark>"
    return f"<mark>\n- {_sentence(rng)}\n- {_sentence(rng)}\n</mark>"
