"""What the pipeline's post-deploy check is allowed to read in the target account."""
