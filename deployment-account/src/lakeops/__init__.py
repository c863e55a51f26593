"""lakeops: everything that lives in or acts on the deployment account."""
