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
                found += _ranked(self._preprocessor.post_process_object_detection(raw, threshold=0.0,
                                                                                  target_sizes=sizes))  # fmt: skip
        return Outputs(detections=found)


def _ranked(results: list[dict[str, Any]]) -> list[Any]:
    """Each image's (m, 6) float64 rows by descending score (stable), the best :data:`MAX_DETECTIONS`.

    Images with as many detections each (DETR-like models keep every query at threshold 0) are sorted and
    copied to numpy as one batch; otherwise image by image.
    """
    import torch

    keys = ("boxes", "scores", "labels")
    if len({len(result["scores"]) for result in results}) == 1:
        return list(_rows(*(torch.stack([result[key] for result in results]) for key in keys)))
    return [_rows(*(result[key][None] for key in keys))[0] for result in results]


def _rows(boxes: Any, scores: Any, labels: Any) -> Any:
    """(images, m, 6) float64 from (images, m, ...) tensors: box, score, class id by descending score, the best 100."""
    import numpy as np
    import torch

    order = scores.argsort(dim=1, descending=True, stable=True)[:, :MAX_DETECTIONS]
    rows = torch.cat([boxes.gather(1, order[..., None].expand(-1, -1, 4)), scores.gather(1, order)[..., None],
                      labels.gather(1, order)[..., None].to(boxes.dtype)], dim=2)  # fmt: skip
    return rows.cpu().numpy().astype(np.float64)
