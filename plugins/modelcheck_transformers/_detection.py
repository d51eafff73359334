"""object-detection: ``AutoModelForObjectDetection`` + ``AutoImageProcessor`` (DETR, YOLOS, RT-DETR, ...).

Each batch of RGB images goes through the processor (resize, normalise, pad) and the model; the
processor's ``post_process_object_detection`` turns the raw queries into boxes in the image's own
pixels (``target_sizes``). Every detection is kept (score threshold 0, as COCO evaluation ranks them
all), the 100 best per image, which is what COCO's mAP reads.
"""

from __future__ import annotations

from typing import Any

from modelcheck.models.backends import Outputs
from modelcheck_transformers._common import TransformersModel
from modelcheck_transformers._vision import rgb_batches

#: Detections kept per image (COCO evaluates at most 100).
MAX_DETECTIONS = 100


class ObjectDetectionModel(TransformersModel):
    """Per image a (m, 6) array: x_min, y_min, x_max, y_max (pixels), score, class id, by descending score."""

    task = "object-detection"

    def __init__(self, network: Any, processor: Any, **kwargs: Any) -> None:
        super().__init__(network, processor, **kwargs)
        self.dtype = network.dtype

    def _predict(self, inputs: list[Any], batch_size: int) -> Outputs:
        import numpy as np
        import torch

        found: list[np.ndarray] = []
        with torch.inference_mode():
            for _, batch in rgb_batches(inputs, batch_size, self.task):
                features = self._preprocessor(images=batch, return_tensors="pt")
                tensors = {key: value.to(self.device, dtype=self.dtype if value.is_floating_point() else value.dtype)
                           for key, value in features.items() if key in ("pixel_values", "pixel_mask")}  # fmt: skip
                raw = self._network(**tensors)
                raw = type(raw)(
                    **{key: value.float() if torch.is_tensor(value) else value for key, value in raw.items()}
                )
                sizes = [(image.height, image.width) for image in batch]
                for result in self._preprocessor.post_process_object_detection(raw, threshold=0.0, target_sizes=sizes):
                    order = result["scores"].argsort(descending=True, stable=True)[:MAX_DETECTIONS]
                    rows = torch.cat([result["boxes"][order], result["scores"][order, None],
                                      result["labels"][order, None].to(result["boxes"].dtype)], dim=1)  # fmt: skip
                    found.append(rows.cpu().numpy().astype(np.float64))
        return Outputs(detections=found)
