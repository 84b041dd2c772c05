"""MLflow "model from code" entry for LeadLens bundles; MLflow runs this file, LeadLens never
imports it. The pyfunc returns calibrated probabilities (not labels) and loads only the bundle's
plain files, so no pickled object is ever loaded from the registry."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from core.model_bundle import load_bundle


class LeadLensModel(PythonModel):
    def load_context(self, context) -> None:
        self.bundle = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"probability": self.bundle.predict(model_input, num_threads=1)})


mlflow.models.set_model(LeadLensModel())
