"""LeadLens command-line entry point (the CLI composes features, training and serving)."""
