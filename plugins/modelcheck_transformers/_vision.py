"""image-classification: ``AutoModelForImageClassification`` + ``AutoImageProcessor`` on RGB PIL images."""

from __future__ import annotations

from typing import Any

from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, bad_input


def rgb_batches(inputs: list[Any], batch_size: int, task: str) -> Any:
    """``(start, RGB images)`` per batch; BackendError naming the first row that is not a PIL image."""
    from PIL import Image

    for row, image in enumerate(inputs):
        if not isinstance(image, Image.Image):
            raise bad_input(row, image, task, "images (PIL.Image)")
    for start in range(0, len(inputs), batch_size):
        yield (
            start,
            [image.convert("RGB") if image.mode != "RGB" else image for image in inputs[start : start + batch_size]],
        )


class ImageClassificationModel(TransformersModel):
    """Class ids and probabilities per image; the processor resizes and normalises each batch."""

    task = "image-classification"

    def __init__(self, network: Any, processor: Any, **kwargs: Any) -> None:
        super().__init__(network, processor, **kwargs)
        self.dtype = network.dtype

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np

        scores = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        for start, batch in rgb_batches(inputs, batch_size, self.task):
            pixels = self._preprocessor(images=batch, return_tensors="pt")["pixel_values"]
            logits = self._network(pixel_values=pixels.to(self.device, dtype=self.dtype)).logits
            scores[start : start + batch_size] = logits.float().softmax(dim=-1).cpu().numpy()
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)
