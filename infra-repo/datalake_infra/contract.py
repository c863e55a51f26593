"""The infra side of the SSM contract: the parameter a stack writes for a value it owns."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_ssm as ssm
from constructs import Construct

from datalake_config.naming import ContractParameter, EnvironmentNames, Kind

# The ETL side reads these as lists (one Glue connection per subnet and its AZ, in the same order).
LIST_KINDS = frozenset({Kind.SUBNET_IDS, Kind.AVAILABILITY_ZONES})


class ContractValue(Construct):
    """One contract parameter, at the path the naming module gives it, holding a value its stack owns."""

    def __init__(
        self, scope: Construct, construct_id: str, *, names: EnvironmentNames, path: str, value: str | Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.entry: ContractParameter = _entry(names, path)
        description = f"{names.prefix} {names.env}: {self.entry.description} (written by the infra app)"
        self.parameter: ssm.StringParameter | ssm.StringListParameter
        if self.entry.kind in LIST_KINDS:
            if isinstance(value, str):
                raise TypeError(f"contract parameter {path} is a StringList: pass a list of values")
            self.parameter = ssm.StringListParameter(
                self,
                "Parameter",
                parameter_name=path,
                string_list_value=list(value),
                description=description,
            )
        else:
            if not isinstance(value, str):
                raise TypeError(f"contract parameter {path} is a String: pass one value")
            self.parameter = ssm.StringParameter(
                self, "Parameter", parameter_name=path, string_value=value, description=description
            )


def contract_reference(scope: Construct, names: EnvironmentNames, path: str) -> str:
    """A value another stack of this stage wrote, resolved by CloudFormation at deploy time (no exports)."""
    entry = _entry(names, path)
    if entry.kind in LIST_KINDS:
        raise TypeError(f"contract parameter {path} is a StringList; no stack of this app reads it back")
    return ssm.StringParameter.value_for_string_parameter(scope, path)


def _entry(names: EnvironmentNames, path: str) -> ContractParameter:
    for entry in names.contract():
        if entry.path == path:
            return entry
    raise KeyError(f"{path} is not a contract parameter of {names.prefix}/{names.env}")
