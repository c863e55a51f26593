"""The data lake network: VPC, endpoints, flow logs and the Glue connection security group."""
