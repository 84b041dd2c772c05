"""The learning side: examples, models, evaluation, MLflow tracking and promotion."""
