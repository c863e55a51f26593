"""The ETL app: job groups found in jobs/, deployed per environment by their branch pipeline."""
