"""Changes to moto, applied inside the emulator process only, each closing a gap the rehearsal would hit.

1. Bucket policies: moto ignores `Condition` blocks (an unsupported operator counts as satisfied), so
   the TLS-only statements (`Deny s3:* when aws:SecureTransport = false`, `... when s3:TlsVersion < 1.2`)
   deny every upload. The emulator only serves TLS 1.2+, so those keys are evaluated as such, and a
   statement whose condition does not hold does not apply, as in AWS. The policies stay in the templates.
2. CloudFormation types moto does not model: see `models.py` (created through moto's backends).
3. Custom resources: moto runs their Lambda handler in Docker, which does not exist here. The resource
   completes at once without running the handler; the rehearsal summary lists every one as "handler not run".
4. `UpdateTerminationProtection`, which the CDK CLI calls for stacks with termination protection (our
   stateful stacks where data is retained), is not implemented by moto; here it records the flag.
5. KMS keys created by CloudFormation keep their `KeyPolicy` as a parsed object in moto, and every later
   call that evaluates the key policy (DescribeKey...) then fails; here the policy is stored as JSON text,
   as the KMS API stores it. Tags arrive in CloudFormation's shapes (Key/Value pairs for keys, a map for
   SSM parameters), which moto's service code does not accept; they are translated to the API's shapes.
6. `AWS::EC2::SecurityGroupIngress`: moto authorizes the rule but gives the resource no physical id, so the
   rehearsal could not tell it was created; here its id is the rule's (`sgr-...`), as in CloudFormation.
7. `StartPipelineExecution` drops its `sourceRevisions` and every execution summary lists none, so the
   promotion guard (which asks which commits a pipeline deployed and verified) could never find one. Here an
   execution keeps the COMMIT_ID revisions it was started with and its summary lists them, in the API's shape.
   moto runs no action, so an execution counts as succeeded at once: the rehearsal starts one only after it
   has played the whole pipeline run (synth, deploy, verify) for that commit itself.
8. Glue `StartJobRun` records a run and executes nothing. Here a run of a job created in the emulator runs
   its script from the emulator's S3 in a child process, with a stand-in for Glue's `awsglue` library, and
   reports the outcome (`glue_runs.py`; active once the server has configured it).

Only with the server's `--deliver-events` (the trigger chain; off by default, so nothing starts by itself):

9. EventBridge delivers to Step Functions (`events.py`): a CloudFormation bucket keeps its EventBridge
   notifications (moto's model drops them), objects created in it send S3's "Object Created" event to the
   default bus, disabled rules deliver nothing, and a rule's state machine target (which moto cannot deliver
   to) starts an execution with the target's input settings applied, if the target's role may
   states:StartExecution on it; every such delivery is recorded at `/moto-api/lakeops/event-deliveries`.
10. State machines execute (`step_functions.py`): moto's interpreter is turned on for the API's and
   CloudFormation's state machines, its tasks call the emulator as the execution's role, the Glue
   (`startJobRun`, `.sync`) and Step Functions (`startExecution`, `.sync`, `.sync:2`) integrations it cannot
   run are emulated, tasks are checked against the role's policies, and executions send their status change
   events to EventBridge.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# moto finds models through `CloudFormationModel.__subclasses__()`, which holds weak references only.
_REGISTERED: list[type] = []


def apply(*, deliver_events: bool = False) -> None:
    _patch_bucket_policy_conditions()
    _register_models()
    _complete_custom_resources_without_handler()
    _add_update_termination_protection()
    _translate_cloudformation_properties()
    _identify_security_group_ingress()
    _keep_pipeline_source_revisions()
    _run_glue_jobs()
    if deliver_events:
        _deliver_events()


def _patch_bucket_policy_conditions() -> None:
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        statements = json.loads(self.policy.decode()).get("Statement", [])
        permitted = False
        for statement in statements if isinstance(statements, list) else [statements]:
            if not _conditions_hold(statement.get("Condition", {})):
                continue
            unconditional = {k: v for k, v in statement.items() if k != "Condition"}
            result = IAMPolicyStatement(unconditional).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


# What every request to the emulator carries: it only serves TLS, and negotiates TLS 1.2 or later.
REQUEST_CONTEXT = {"aws:securetransport": "true", "s3:tlsversion": "1.2"}
NUMERIC = {
    "NumericEquals": lambda a, b: a == b,
    "NumericNotEquals": lambda a, b: a != b,
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}


def _conditions_hold(conditions: dict[str, Any]) -> bool:
    """Evaluate the transport conditions (`aws:SecureTransport`, `s3:TlsVersion`) against this emulator's
    requests; conditions on other keys keep moto's behaviour (not evaluated, taken as holding)."""
    for operator, clauses in conditions.items():
        for key, expected in clauses.items():
            actual = REQUEST_CONTEXT.get(key.lower())
            if actual is None:
                continue
            values = [str(v).lower() for v in (expected if isinstance(expected, list) else [expected])]
            if operator.startswith("Bool"):
                holds = actual in values
            elif operator in NUMERIC:
                holds = any(NUMERIC[operator](float(actual), float(v)) for v in values)
            else:
                continue
            if not holds:
                return False
    return True


def _register_models() -> None:
    from moto.cloudformation import parsing

    from lakeops.emulator.models import EMULATIONS, model_class

    known = parsing.get_model_map()
    for emulation in EMULATIONS:
        if emulation.cfn_type not in known:
            _REGISTERED.append(model_class(emulation))
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


def _complete_custom_resources_without_handler() -> None:
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.models import cloudformation_backends

    def create(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        resource = CustomModel(region_name, "emulated", kwargs["LogicalId"], resource_name)  # type: ignore[abstract]
        cloudformation_backends[account_id][region_name].get_stack(kwargs["StackId"]).add_custom_resource(resource)
        resource.set_data({})
        return resource

    CustomModel.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment,arg-type]


def _add_update_termination_protection() -> None:
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def update_termination_protection(self: Any) -> Any:
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection", False)
        return ActionResult({"StackId": stack.stack_id})

    CloudFormationResponse.update_termination_protection = update_termination_protection  # type: ignore[attr-defined]


def _translate_cloudformation_properties() -> None:
    from moto.kms.models import Key
    from moto.ssm.models import Parameter

    def key_properties(properties: dict[str, Any]) -> None:
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        properties["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} if "Key" in tag else tag
            for tag in properties.get("Tags", [])
        ]

    def parameter_properties(properties: dict[str, Any]) -> None:
        # AWS::SSM::Parameter takes its tags as a map; moto's put_parameter wants the API's Key/Value list.
        if isinstance(properties.get("Tags"), dict):
            properties["Tags"] = [{"Key": k, "Value": v} for k, v in properties["Tags"].items()]

    _before_create(Key, key_properties)
    _before_create(Parameter, parameter_properties)


def _before_create(model: Any, fix: Any) -> None:
    """Let `fix` rewrite a resource's properties before moto's own CloudFormation create runs."""
    wrap_cloudformation(model, before=fix)


def wrap_cloudformation(
    model: Any,
    *,
    before: Callable[[dict[str, Any]], None] | None = None,
    after: Callable[[Any, dict[str, Any]], None] | None = None,
) -> None:
    """Run `before(properties)` ahead of moto's CloudFormation create of `model`, and `after(resource,
    properties)` once it is created or updated: the one way the emulator amends moto's CloudFormation models."""
    original_create = model.create_from_cloudformation_json.__func__
    original_update = model.update_from_cloudformation_json.__func__

    def create(
        cls: Any,
        /,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json.setdefault("Properties", {})
        if before is not None:
            before(properties)
        created = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        if after is not None:
            after(created, properties)
        return created

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        updated = original_update(
            cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
        )
        if after is not None:
            after(updated, cloudformation_json.get("Properties") or {})
        return updated

    model.create_from_cloudformation_json = classmethod(create)
    if after is not None:
        model.update_from_cloudformation_json = classmethod(update)


def _identify_security_group_ingress() -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.security_groups import SecurityGroupIngress

    ingress: Any = SecurityGroupIngress  # patched below, where moto's own types do not allow it
    original = ingress.create_from_cloudformation_json.__func__

    def create(
        cls: Any,
        /,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        # moto returns no handle on the rules it authorized: they are the group's rules that were not there before
        backend = ec2_backends[account_id][region_name]
        before = {rule.id for group in backend.describe_security_groups() for rule in group.ingress_rules}
        resource = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        resource.rule_ids = [rule.id for rule in resource.security_group.ingress_rules if rule.id not in before]
        return resource

    def physical_resource_id(self: Any) -> str | None:
        # one rule per resource (one source per AWS::EC2::SecurityGroupIngress), hence one id
        return ",".join(self.rule_ids) or None

    ingress.create_from_cloudformation_json = classmethod(create)
    ingress.physical_resource_id = property(physical_resource_id)


def _keep_pipeline_source_revisions() -> None:
    from moto.codepipeline.models import PipelineExecution
    from moto.codepipeline.responses import CodePipelineResponse

    execution: Any = PipelineExecution
    response: Any = CodePipelineResponse
    original_start = response.start_pipeline_execution
    original_summary = execution.to_summary_dict

    def start_pipeline_execution(self: Any) -> str:
        answer: str = original_start(self)
        started = self.codepipeline_backend.get_pipeline_execution(
            self._get_param("name"), json.loads(answer)["pipelineExecutionId"]
        )
        started.source_revisions = [
            {"actionName": r["actionName"], "revisionId": r["revisionValue"]}
            for r in self._get_param("sourceRevisions") or []
            if r.get("revisionType") == "COMMIT_ID"
        ]
        return answer

    def to_summary_dict(self: Any) -> dict[str, Any]:
        summary: dict[str, Any] = original_summary(self)
        summary["sourceRevisions"] = list(getattr(self, "source_revisions", []))
        return summary

    response.start_pipeline_execution = start_pipeline_execution
    execution.to_summary_dict = to_summary_dict


def _run_glue_jobs() -> None:
    from lakeops.emulator import glue_runs

    glue_runs.apply()


def _deliver_events() -> None:
    from lakeops.emulator import events, step_functions

    events.apply()
    step_functions.apply()
