"""The answering side: loads promoted models and answers requests (never imports training)."""
