"""image-classification: ``AutoModelForImageClassification`` + ``AutoImageProcessor`` on RGB PIL images."""

from __future__ import annotations

from typing import Any

from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel, bad_input


class ImageClassificationModel(TransformersModel):
    """Class ids and probabilities per image; the processor resizes and normalises each batch."""

    task = "image-classification"

    def __init__(self, network: Any, processor: Any, **kwargs: Any) -> None:
        super().__init__(network, processor, **kwargs)
        self.dtype = network.dtype

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np
        from PIL import Image

        for row, image in enumerate(inputs):
            if not isinstance(image, Image.Image):
                raise bad_input(row, image, self.task, "images (PIL.Image)")
        scores = np.zeros((len(inputs), len(self.label_names)), dtype=np.float32)
        for start in range(0, len(inputs), batch_size):
            batch = [
                image.convert("RGB") if image.mode != "RGB" else image for image in inputs[start : start + batch_size]
            ]
            pixels = self._preprocessor(images=batch, return_tensors="pt")["pixel_values"]
            logits = self._network(pixel_values=pixels.to(self.device, dtype=self.dtype)).logits
            scores[start : start + batch_size] = logits.float().softmax(dim=-1).cpu().numpy()
        return Outputs(labels=scores.argmax(axis=1).astype(np.int64), scores=scores)
