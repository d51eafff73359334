"""A tiny real detector trained in seconds on synthetic scenes: red and blue rectangles on grey.

Each 32x32 image holds one or two axis-aligned rectangles, red or blue, 6 to 13 pixels a side. A YOLOS
model (a ViT with detection tokens: 4x4 patches, two layers, hidden size 48, six detection tokens) learns to box
and name them with DETR's Hungarian loss; its image processor resizes to 32x32 and normalises.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 32
NAMES = ("red", "blue")
COLOURS = ((220, 30, 30), (30, 30, 220))


def scenes(n: int, seed: int, most: int = 2) -> list[tuple[np.ndarray, list[list[int]], list[str]]]:
    """``n`` deterministic (RGB image, boxes as [x, y, w, h] pixels, colour names), 1 to ``most`` per image."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = np.full((SIZE, SIZE, 3), 128, np.uint8)
        boxes, names = [], []
        for _ in range(int(rng.integers(1, most + 1))):
            colour = int(rng.integers(0, 2))
            w, h = (int(v) for v in rng.integers(6, 14, 2))
            x, y = int(rng.integers(0, SIZE - w)), int(rng.integers(0, SIZE - h))
            image[y : y + h, x : x + w] = COLOURS[colour]
            boxes.append([x, y, w, h])
            names.append(NAMES[colour])
        out.append((image, boxes, names))
    return out


def write_scenes(folder: Path, rows: list[tuple[np.ndarray, list[list[int]], list[str]]]) -> list[dict[str, Any]]:
    """Write each image as PNG in ``folder``; one record per row: its path (relative to the folder's parent),
    and ``objects`` in the Hub's shape (``{"bbox": [...], "category": [...]}``)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (image, boxes, names) in enumerate(rows):
        Image.fromarray(image).save(folder / f"scene{i:04d}.png")
        records.append({"image": f"{folder.name}/scene{i:04d}.png", "objects": {"bbox": boxes, "category": names}})
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


def build_detector(out: Path, *, trained: bool = True, steps: int = 1400, seed: int = 0) -> Path:
    """A tiny YolosForObjectDetection that boxes the rectangles (``trained``), or its random start."""
    import torch
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = YolosConfig(
        image_size=[SIZE, SIZE], patch_size=4, hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=96, num_detection_tokens=6, num_labels=len(NAMES), hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, id2label=dict(enumerate(NAMES)), label2id={n: i for i, n in enumerate(NAMES)},
    )  # fmt: skip
    model = YolosForObjectDetection(config)
    if trained:
        rng_rows = scenes(steps * 16, seed=seed + 1)  # a fresh batch of scenes each step
        pixels = torch.tensor(np.stack([image for image, _, _ in rng_rows])).permute(0, 3, 1, 2).float() / 127.5 - 1
        targets = [
            {"class_labels": torch.tensor([NAMES.index(n) for n in names]),
             "boxes": torch.tensor([[(x + w / 2) / SIZE, (y + h / 2) / SIZE, w / SIZE, h / SIZE]
                                    for x, y, w, h in boxes], dtype=torch.float32)}
            for _, boxes, names in rng_rows
        ]  # fmt: skip
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model.train()
        for step in range(steps):
            pick = [(step * 16 + i) % len(rng_rows) for i in range(16)]
            loss = model(pixel_values=pixels[pick], labels=[targets[i] for i in pick]).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    model.save_pretrained(out)
    YolosImageProcessor(do_resize=True, size={"height": SIZE, "width": SIZE}, do_normalize=True,
                        image_mean=[0.5] * 3, image_std=[0.5] * 3, do_pad=False).save_pretrained(out)  # fmt: skip
    return out


@functools.cache
def shared(name: str) -> Path:
    """``detector`` or ``detector-untrained``, built once per process (read-only)."""
    import tiny_models

    builders = {"detector": lambda out: build_detector(out), "detector-untrained": lambda out: build_detector(
        out, trained=False)}  # fmt: skip
    return builders[name](tiny_models._shared_root() / name)
