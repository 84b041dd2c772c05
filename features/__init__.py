"""The data side: the CRM contract, ingestion, the warehouse, engagement features."""
