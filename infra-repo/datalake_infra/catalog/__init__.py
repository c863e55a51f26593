"""The Glue Data Catalog of the lake: one database per zone, and the catalog's encryption."""
