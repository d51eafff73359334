"""Data messages name rows from 1, the header not counted, across predict's chunks too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from modelcheck.errors import DataError
from modelcheck.models.backends import InputRowError, Outputs
from modelcheck.models.predict import chunk_size, predict


class RefusesNone:
    """A backend that refuses a None input, naming it within the inputs it was given (as backends do)."""

    device = "cpu"
    label_names = ("a", "b")

    def predict(self, inputs: Sequence[Any], *, batch_size: int) -> Outputs:
        import numpy as np

        for row, value in enumerate(inputs):
            if value is None:
                raise InputRowError(row, "the input at ", " is missing")
        return Outputs(labels=np.zeros(len(inputs), dtype=np.int64))

    def artifact_files(self) -> list[Path]:
        return []

    def close(self) -> None:
        pass


def test_a_bad_input_in_a_later_chunk_names_its_data_row() -> None:
    size = chunk_size(1)
    inputs: list[Any] = ["x"] * (size + 10)
    inputs[size + 4] = None  # the 5th row of the second chunk
    with pytest.raises(DataError, match=rf"^the input at data row {size + 5} \(counting from 1, header not counted\)"):
        predict(RefusesNone(), inputs, batch_size=1)


def test_a_missing_feature_names_its_data_row(tmp_path: Path) -> None:
    import pandas as pd

    from modelcheck.run.data import numeric_matrix

    frame = pd.DataFrame({"a": [1.0, 2.0, None], "b": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match=r"feature column 'a' has no value at data row 3 \(counting from 1"):
        numeric_matrix(frame, ("a", "b"))
