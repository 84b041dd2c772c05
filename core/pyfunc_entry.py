"""MLflow "model from code" entry for LeadLens bundles; MLflow runs this file, LeadLens never
imports it. The pyfunc returns calibrated probabilities (not labels) and loads only the bundle's
plain files, so no pickled object is ever loaded from the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from core.model_bundle import load_bundle


class LeadLensModel(PythonModel):
    """A LeadLens bundle as an MLflow pyfunc: calibrated probabilities, one per input row."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the bundle from the model's `bundle` artifact (plain files, nothing unpickled)."""
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """A `probability` column: the calibrated score of each row of `model_input`."""
        return pd.DataFrame({"probability": self.bundle.predict(model_input, num_threads=1)})


mlflow.models.set_model(LeadLensModel())
